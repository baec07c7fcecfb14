"""Group commit: the events of concurrent commands saved in one transaction.

The event store takes a table lock per insert transaction (that is how its notification
log stays gap-free), so single-command transactions cap the write rate. One writer thread
takes every save that queued up while it was busy and inserts them together.

Each command still gets exactly its own outcome. If the combined insert fails for any
reason (a lost race, an event that cannot be encoded, a constraint), each save is retried
on its own, so only the command at fault sees its error. A caller waits a bounded time,
and learns at once if the writer is gone.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Recording

log = logging.getLogger("carprice.commands")
Event = DomainEventProtocol[UUID]
Put = Callable[[Sequence[Event]], list[Recording[UUID]]]


class StoreTimeout(RuntimeError):
    """The event store did not answer in time; the command's outcome is unknown."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the event store did not confirm the change within {seconds:g} s; "
                         "it may still be recorded: retry with the same Idempotency-Key")


class WriterStopped(RuntimeError):
    """The group-commit writer is not running (the process is shutting down)."""

    def __init__(self) -> None:
        super().__init__("the service is shutting down; nothing was recorded, please retry")


@dataclass
class _Save:
    events: Sequence[Event]
    done: threading.Event = field(default_factory=threading.Event)
    recordings: list[Recording[UUID]] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter:
    """Serialises saves through one writer thread that batches whatever is waiting."""

    def __init__(self, put: Put, max_batch: int = 100, timeout: float = 30.0) -> None:
        self._put = put
        self._max_batch = max_batch
        self._timeout = timeout
        self._queue: queue.SimpleQueue[_Save | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, events: Sequence[Event]) -> list[Recording[UUID]]:
        """Record these events (one command's) and return their recordings."""
        if self._closed or not self._thread.is_alive():
            raise WriterStopped()
        item = _Save(events)
        self._queue.put(item)
        waited = 0.0
        while not item.done.wait(min(1.0, self._timeout - waited)):
            waited += 1.0
            if not self._thread.is_alive() and not item.done.is_set():
                raise WriterStopped()
            if waited >= self._timeout:
                raise StoreTimeout(self._timeout)
        if item.error is not None:
            raise item.error
        return item.recordings

    def close(self) -> None:
        """Stop the writer once the queue is drained."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - the writer must outlive any batch
                log.exception("group commit: unexpected failure")
                for item in batch:
                    if not item.done.is_set():
                        item.error = exc
                        item.done.set()
            if stop:
                return

    def _write(self, batch: list[_Save]) -> None:
        if len(batch) > 1:
            try:
                recordings = self._put([e for item in batch for e in item.events])
            except Exception as exc:  # noqa: BLE001 - retried one by one: each gets its own outcome
                log.debug("group commit: a batch of %d saves failed (%s); saving them one by one",
                          len(batch), type(exc).__name__)
            else:
                start = 0
                for item in batch:
                    item.recordings = recordings[start:start + len(item.events)]
                    start += len(item.events)
                    item.done.set()
                return
        for item in batch:
            try:
                item.recordings = self._put(item.events)
            except Exception as exc:  # noqa: BLE001 - handed to its caller
                item.error = exc
            item.done.set()
