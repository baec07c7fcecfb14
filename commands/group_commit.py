"""Group commit: the events of concurrent commands saved in one transaction.

The event store takes a table lock per insert transaction (that is how its
notification log stays gap-free), so single-command transactions cap the write
rate. One writer thread takes every save that queued up while it was busy and
inserts them together. If that combined insert conflicts, each save is retried
on its own, so every command still gets exactly its own outcome: recorded, or
the conflict its caller retries.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import RecordConflictError, Recording

Put = Callable[[Sequence[Any]], list[Recording[UUID]]]


@dataclass
class _Save:
    events: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    recordings: list[Recording[UUID]] = field(default_factory=list)
    error: BaseException | None = None


class GroupCommitter:
    """Serialises saves through one writer thread that batches whatever is waiting."""

    def __init__(self, put: Put, max_batch: int = 100) -> None:
        self._put = put
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Save | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def save(self, events: list[Any]) -> list[Recording[UUID]]:
        """Record these events (one command's) and return their recordings."""
        item = _Save(events)
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return item.recordings

    def close(self) -> None:
        """Stop the writer once the queue is drained."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[_Save]) -> None:
        if len(batch) > 1:
            try:
                recordings = self._put([e for item in batch for e in item.events])
            except RecordConflictError:
                pass  # someone in the batch lost a race: fall back to one by one
            except BaseException as exc:  # noqa: BLE001 - handed to every caller
                for item in batch:
                    item.error = exc
                    item.done.set()
                return
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
            except BaseException as exc:  # noqa: BLE001 - handed to its caller
                item.error = exc
            item.done.set()
