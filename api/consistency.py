"""Read-your-writes: wait, bounded, until a read row reflects the store's current version."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar
from uuid import UUID

from commands.app import CarpriceApp


class Versioned(Protocol):
    """A read row that says which aggregate version it reflects."""

    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=Versioned)
WAIT_SECONDS = 2.0


def store_version(app: CarpriceApp, aggregate_id: UUID) -> int:
    """The aggregate's current version in the event store (one primary-key lookup)."""
    events = app.recorder.select_events(aggregate_id, desc=True, limit=1)
    return events[0].originator_version if events else 0


def fresh(read: Callable[[], T | None], target: int,
          timeout: float = WAIT_SECONDS) -> tuple[T | None, bool]:
    """(row, stale): the first read whose version reaches `target`, or the last one."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        row = read()
        if row is not None and row.version >= target:
            return row, False
        if time.monotonic() >= deadline:
            return row, True
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
