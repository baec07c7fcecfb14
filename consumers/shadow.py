"""Shadow pricing: a share of the paid jobs priced again by each challenger of their model.

Unbilled and unseen: a shadow price changes no balance and no job, and no user reads it; the
Models page compares it with the champion's. It can neither delay nor fail a paid job: the
paid outcomes are saved first, then handed over to a thread of its own through a bounded
queue that drops work rather than wait (a crash or a full queue loses samples, never money).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

from commands.results import Outcome
from infra.published import PublishedEvent
from infra.shadow_prices import ShadowPrice, ShadowPrices
from model_registry.features import columns_of
from model_registry.serving import quote
from model_registry.store import Registry

log = logging.getLogger("carprice.shadow")

QUEUE_BATCHES = 32  # inference batches waiting to be shadowed before new ones are dropped

# a paid job to shadow: its request and its saved outcome
Paid = tuple[PublishedEvent, Outcome]


def chosen(job_id: UUID, share: float) -> bool:
    """Whether a job is in the shadowed share: its id decides, so a redelivered job is chosen
    again (and its rows, already there, are kept)."""
    return job_id.int >> 96 < share * 2**32


class Shadow:
    """Prices the chosen share of paid jobs with their model's challengers, in a thread."""

    def __init__(self, registry: Registry, store: ShadowPrices, share: float) -> None:
        self.registry = registry
        self.store = store
        self.share = share
        self.priced = 0  # shadow prices kept
        self.dropped = 0  # jobs not shadowed because the queue was full
        self._queue: queue.Queue[list[Paid] | None] = queue.Queue(QUEUE_BATCHES)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, requests: Sequence[PublishedEvent], outcomes: Sequence[Outcome]) -> None:
        """Hand the chosen, priced jobs of a batch over (after their outcomes are saved); never
        waits."""
        if self.share <= 0:
            return
        paid = [(e, o) for e, o in zip(requests, outcomes, strict=True)
                if o.error is None and o.result is not None and chosen(o.job_id, self.share)]
        if not paid:
            return
        try:
            self._queue.put_nowait(paid)
        except queue.Full:
            self.dropped += len(paid)
            log.warning("shadow queue full: %d jobs not shadowed (%d so far)", len(paid), self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued (within `timeout`), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    def drain(self) -> None:
        """Wait until everything handed over so far is shadowed (tests)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            paid = self._queue.get()
            try:
                if paid is None:
                    return
                rows = self.price(paid)
                self.store.save(rows)
                self.priced += len(rows)
            except Exception as exc:  # noqa: BLE001 - a lost sample; the thread goes on
                log.error("shadow pricing of %d jobs failed: %s: %s", len(paid or ()),
                          type(exc).__name__, exc)
            finally:
                self._queue.task_done()

    def price(self, paid: list[Paid]) -> list[ShadowPrice]:
        """The shadow prices of `paid`: one row per job and challenger of its model."""
        groups: dict[tuple[str, str], list[Paid]] = defaultdict(list)
        for e, o in paid:
            groups[(e.data["model_name"], e.data["model_version"])].append((e, o))
        rows: list[ShadowPrice] = []
        for (name, paid_version), jobs in groups.items():
            for version in self.registry.challengers(name):
                if version != paid_version:
                    rows += self._price_with(name, version, paid_version, jobs)
        return rows

    def _price_with(self, name: str, version: str, paid_version: str,
                    jobs: list[Paid]) -> list[ShadowPrice]:
        def row(o: Outcome, price: float | None = None, interval: dict[str, float] | None = None,
                error: str | None = None) -> ShadowPrice:
            return ShadowPrice(o.job_id, name, version, paid_version, float(o.result or 0), price,
                               (interval or {}).get("low"), (interval or {}).get("high"), error)

        try:
            model = self.registry.load(name, version)
            quotes = quote(model, columns_of([e.data["features"] for e, _ in jobs]))
        except Exception as exc:  # noqa: BLE001 - the challenger's failure, noted per job
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("challenger %s v%s could not price %d jobs: %s", name, version, len(jobs), error)
            return [row(o, error=error) for _, o in jobs]
        out = []
        for (_, o), (price, interval) in zip(jobs, quotes, strict=True):
            usable = isinstance(price, float | int) and math.isfinite(price) and price > 0
            out.append(row(o, round(float(price), 2), interval) if usable
                       else row(o, error=f"no usable price ({price})"))
        return out
