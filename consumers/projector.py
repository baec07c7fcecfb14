"""The projector: events from Kafka into the read tables, one transaction per batch.

A batch's rows, its per-partition offsets, the webhook deliveries it causes and a NOTIFY
of the users whose rows changed are one transaction. An event that skips a version is
repaired from the store. An event that cannot be applied at all (dead-lettered by the loop)
is noted as a fault, and its aggregate's rows are rebuilt from the store; a fault that
cannot be repaired keeps the projection unhealthy (/readyz, metrics) and is retried until
it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from consumers.loop import BatchHandler
from infra.pg import Pool
from infra.published import PublishedEvent
from projections import webhooks
from projections.apply import History, apply_events
from projections.registry import PROJECTIONS
from projections.state import (
    mark_repaired,
    notify,
    offsets,
    open_faults,
    record_fault,
    save_offsets,
)

log = logging.getLogger("carprice.projector")
RETRY_FAULTS_SECONDS = 30.0


def applied_offsets(pool: Pool, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (Kafka offset, store position) of the last message every projection has
    applied (a partition some projection never read is left out: it is read from its start)."""
    with pool.connection() as conn:
        known = offsets(conn, topic)
    out: dict[int, tuple[int, int]] = {}
    for partition in {o.partition for o in known}:
        mine = [o for o in known if o.partition == partition]
        if {o.projection for o in mine} >= set(PROJECTIONS):
            least = min(mine, key=lambda o: o.kafka_offset)
            out[partition] = (least.kafka_offset, least.position)
    return out


class ProjectionHandler(BatchHandler):
    """Applies a batch to every projection in one transaction (rows + offsets + notify)."""

    def __init__(self, pool: Pool, history: History,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.history = history
        self.clock = clock
        self._faults_checked = clock()

    def __call__(self, events: list[PublishedEvent]) -> None:
        with self.pool.connection() as conn, conn.transaction():
            result = apply_events(conn, events, self.history)
            webhooks.enqueue(conn, result.changed)
            save_offsets(conn, events)
            notify(conn, result.users)
        for name, aggregate in result.repaired:
            log.info("%s: rows of %s repaired from the store", name, aggregate)

    def healthy(self) -> bool:
        """The read database answers."""
        with self.pool.connection() as conn:
            conn.execute("SELECT 1")
        return True

    def on_dead_letter(self, event: PublishedEvent, error: BaseException) -> None:
        """Note the fault (the event is consumed, not lost), then try to repair its rows."""
        names = [p.name for p in PROJECTIONS.values() if p.handles(event)]
        with self.pool.connection() as conn, conn.transaction():
            for name in names:
                record_fault(conn, name, event, f"{type(error).__name__}: {error}")
            save_offsets(conn, [event])
        for name in names:
            self.repair(name, event.aggregate_id)

    def repair(self, name: str, aggregate_id: str) -> bool:
        """Rebuild one aggregate's rows in one projection from the store; True when it worked."""
        try:
            history = self.history(aggregate_id)
            with self.pool.connection() as conn, conn.transaction():
                PROJECTIONS[name].repair(conn, history)
                mark_repaired(conn, name, aggregate_id)
                notify(conn, {e.user_id for e in history})
        except Exception as exc:  # noqa: BLE001 - the fault stays open; retried later
            log.error("%s: the rows of %s could not be repaired: %s: %s; the projection reports "
                      "itself unhealthy until they are", name, aggregate_id, type(exc).__name__, exc)
            return False
        log.info("%s: rows of %s rebuilt from the store; fault closed", name, aggregate_id)
        return True

    def tick(self) -> None:
        """When idle, now and then: retry the repair of open faults; forget old job updates."""
        if self.clock() - self._faults_checked < RETRY_FAULTS_SECONDS:
            return
        self._faults_checked = self.clock()
        with self.pool.connection() as conn:
            faults = open_faults(conn)
            conn.execute("DELETE FROM job_updates WHERE recorded_at < now() - interval '1 day'")
            webhooks.prune(conn)
        for name, aggregate in sorted({(p, a) for _, p, a in faults}):
            self.repair(name, aggregate)
