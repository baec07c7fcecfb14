"""The write side's one Application: the event store every command module saves to, and
what they share (loading wallets and jobs, many aggregates at once, deadlines, the seams of
`save()`). Users, wallets, jobs and batches share one store because a charge and its job must
be saved in one transaction; the store's optimistic concurrency (unique aggregate id +
version) makes concurrent commands safe without locks of our own.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import BaseAggregate, CanMutateAggregate, Snapshot
from eventsourcing.persistence import Recording

from commands.group_commit import GroupCommitter
from commands.results import WalletState
from domain.catalog import ModelCatalog
from domain.errors import (
    InvalidCredentials,
    JobNotFound,
)
from domain.ids import wallet_id_for
from domain.job import PredictionJob
from domain.wallet import Wallet
from infra.api_keys import api_keys_for
from infra.eventsourcing_compat import Application
from infra.eventstore import latest_stored, stored_after
from infra.eventstore import pools as eventstore_pools
from infra.personal import personal_data_for
from infra.pg import discard_broken
from infra.published import PublishedEvent, from_notification, from_stored

DEFAULT_DEADLINE_SECONDS = 300
MIN_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS = 5, 24 * 3600


def last_position(recordings: list[Recording[UUID]]) -> int | None:
    """The log position of the last of a save's events (None: nothing was saved)."""
    ids = [r.notification.id for r in recordings]
    return max(ids) if ids else None


class WriteSide(Application):
    """The write side of carprice."""

    name = "carprice"  # the library names the tables after it (each subclass sets it again)
    # A wallet loads from its latest snapshot plus at most this many events (users with a long
    # history would otherwise replay all of it on a process's first read of their wallet).
    snapshotting_intervals = {Wallet: 100}  # noqa: RUF012 - the library's class attribute

    def __init__(self, catalog: ModelCatalog, env: dict[str, str] | None = None,
                 group_commit: bool = False, deadline_seconds: int = DEFAULT_DEADLINE_SECONDS,
                 commit_timeout: float = 30.0) -> None:
        super().__init__(env=env)
        self.personal = personal_data_for(self.recorder)
        self.api_keys = api_keys_for(self.recorder)
        self.catalog = catalog
        self.deadline_seconds = deadline_seconds
        self._committer = (GroupCommitter(self.events.put, timeout=commit_timeout)
                           if group_commit else None)

    def snapshot_after_save(self, processing_event: ProcessingEvent[UUID]) -> None:
        """At most one snapshot per aggregate per save, taken from the aggregate just saved.

        The library takes one per interval crossed (a fleet batch reserves thousands of times
        in one save) and rebuilds each from the store first; a wallet holding for thousands of
        jobs took 230 ms per snapshot that way. The saved aggregate is the recorded state at
        its version, so it is snapshotted as it is.
        """
        if self.snapshots is None:
            return
        due: set[UUID] = set()
        for e in processing_event.events:
            aggregate = processing_event.aggregates.get(e.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate else None
            if interval and e.originator_version % interval == 0:
                due.add(e.originator_id)
        aggregates: list[Any] = [processing_event.aggregates[i] for i in due]
        snapshots = [type(a).Snapshot.take(a) for a in aggregates]
        if snapshots:
            self.snapshots.put(snapshots)

    def record_events(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Application.save calls this, then takes snapshots and notifies as usual: with group
        commit only the insert is shared with other commands' inserts."""
        if self._committer is None or processing_event.tracking is not None:
            return super().record_events(processing_event)
        return self._committer.save(processing_event.events)

    def close(self) -> None:
        """Stop the group-commit writer, then close the store."""
        if self._committer is not None:
            self._committer.close()
        super().close()

    def discard_broken_connections(self) -> None:
        """After a database outage: drop the store's pooled connections the server ended."""
        discard_broken(*eventstore_pools(self.recorder))

    # -- reading the store (what other layers may know of it) -------------------

    def aggregate_version(self, aggregate_id: UUID) -> int:
        """The current version of an aggregate in the store (0: it does not exist)."""
        events = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return events[0].originator_version if events else 0

    @property
    def events_table(self) -> str:
        """The store's events table (for `versions.aggregate_version` on async connections)."""
        return str(self.recorder.events_table_name)  # type: ignore[attr-defined]

    def head_position(self) -> int:
        """The position of the last event recorded (0 in an empty store)."""
        return self.recorder.max_notification_id() or 0

    def published_after(self, position: int, limit: int = 500,
                        topics: Sequence[str] = ()) -> list[PublishedEvent]:
        """Events after `position` in log order, in their published form."""
        rows = self.recorder.select_notifications(start=position, limit=limit, topics=topics,
                                                  inclusive_of_start=False)
        return [from_notification(n, self.mapper.transcoder) for n in rows]

    def published_history(self, aggregate_id: str | UUID) -> list[PublishedEvent]:
        """Every event of one aggregate, in version order, in its published form."""
        rows = self.recorder.select_events(UUID(str(aggregate_id)))
        return [from_stored(s, self.mapper.transcoder) for s in rows]

    # -- wallet ----------------------------------------------------------------


    def _wallet(self, user_id: UUID) -> Wallet:
        try:
            return self.repository.get(wallet_id_for(user_id))
        except AggregateNotFoundError:
            raise InvalidCredentials() from None

    def _wallet_state(self, wallet: Wallet, recordings: list[Recording[UUID]]) -> WalletState:
        return WalletState(wallet.user_id, wallet.balance, wallet.version,
                           last_position(recordings), bool(recordings), wallet.reserved,
                           wallet.promotional)

    def _wallet_of(self, user_id: UUID, wallets: dict[UUID, Wallet]) -> Wallet:
        """The user's wallet, loaded once per combined save."""
        if user_id not in wallets:
            wallets[user_id] = self._wallet(user_id)
        return wallets[user_id]

    def job(self, job_id: UUID, user_id: UUID | None = None) -> PredictionJob:
        """A job (only the owner's, when a user is given)."""
        try:
            job: PredictionJob = self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFound(job_id) from None
        if not isinstance(job, PredictionJob) or (user_id is not None and job.user_id != user_id):
            raise JobNotFound(job_id)
        return job

    def _deadline(self, seconds: int | None) -> datetime:
        chosen = self.deadline_seconds if seconds is None else seconds
        chosen = max(MIN_DEADLINE_SECONDS, min(MAX_DEADLINE_SECONDS, int(chosen)))
        return datetime.now(UTC) + timedelta(seconds=chosen)

    def load_many(self, ids: Sequence[UUID],
                  keep: Container[UUID] | None = None) -> dict[UUID, BaseAggregate[UUID]]:
        """Aggregates by id, read together (unknown ids are absent): on PostgreSQL one query
        for the snapshots of those not in the cache and one for the new events of all of them,
        where `repository.get` makes one or two per aggregate. Like `get`, it hands out copies:
        the cached aggregates are never changed here (a save puts the saved ones back).

        `keep` names the ids worth caching (default: all): an aggregate read once and never
        again in this process (a job its outcome ends) would only fill the cache, a deep copy
        each, until its 10,000 entries are full."""
        wanted = list(dict.fromkeys(ids))
        cache = self.repository.cache
        start: dict[UUID, BaseAggregate[UUID]] = {}
        if cache is not None:
            for i in wanted:
                try:
                    start[i] = deepcopy(cast(BaseAggregate[UUID], cache.get(i)))
                except KeyError:
                    continue
        missing = [i for i in wanted if i not in start]
        snapshots = (latest_stored(self.snapshots.recorder, missing)
                     if self.snapshots is not None else {})
        if snapshots is not None:
            for i, stored in snapshots.items():
                snapshot = cast(Snapshot, self.mapper.to_domain_event(stored))
                start[i] = snapshot.mutate(None)
            after = {i: (start[i].version if i in start else 0) for i in wanted}
            stored_events = stored_after(self.recorder, after)
        if snapshots is None or stored_events is None:  # not PostgreSQL: one by one
            found: dict[UUID, BaseAggregate[UUID]] = {}
            for i in wanted:
                try:
                    found[i] = self.repository.get(i)
                except AggregateNotFoundError:
                    continue
            return found
        out: dict[UUID, BaseAggregate[UUID]] = {}
        for i in wanted:
            aggregate = start.get(i)
            for stored in stored_events.get(i, ()):
                event = cast(CanMutateAggregate[UUID], self.mapper.to_domain_event(stored))
                aggregate = event.mutate(aggregate)  # what project_aggregate does, unasserted
            if aggregate is None:
                continue
            out[i] = aggregate
            if cache is not None and (keep is None or i in keep):
                cache.put(i, deepcopy(aggregate))  # as get() keeps it: the next read fast-forwards
        return out
