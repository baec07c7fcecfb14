"""What a projection is: its tables, a handler per event type, and how it repairs a row.

A handler applies one event to the row of its aggregate only when the row is at exactly the
previous version. It says what happened: APPLIED; DUPLICATE (the row is at this version or
later: a redelivery, changes nothing); GAP (the row is missing or behind by more than one
version: an event was never delivered). A gap is mended by rebuilding that aggregate's rows
from its events in the store (`repair`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from infra.published import PublishedEvent


class Applied(enum.Enum):
    """The outcome of applying one event to a row."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    GAP = "gap"


Handler = Callable[[psycopg.Connection[TupleRow], PublishedEvent, str], Applied]


def table(name: str, suffix: str) -> sql.Identifier:
    """The identifier of a read table (a rebuild writes `<name>_rebuild`)."""
    return sql.Identifier(f"{name}{suffix}")


def guarded(updated: object, row_version: int | None, event_version: int) -> Applied:
    """The outcome of an update guarded by `version = event_version - 1`."""
    if updated:
        return Applied.APPLIED
    if row_version is not None and row_version >= event_version:
        return Applied.DUPLICATE
    return Applied.GAP


@dataclass(frozen=True)
class Projection:
    """One read model: the tables it owns and how each event type changes them."""

    name: str
    tables: tuple[str, ...]
    handlers: dict[str, Handler]
    # delete the rows of one aggregate (before a repair replays its events)
    forget: Callable[[psycopg.Connection[TupleRow], PublishedEvent, str], None]
    notes: tuple[str, ...] = field(default=())

    def handles(self, event: PublishedEvent) -> bool:
        """True when this projection reads events of this type."""
        return event.type in self.handlers

    def apply(self, conn: psycopg.Connection[TupleRow], event: PublishedEvent, suffix: str = "") -> Applied:
        """Apply one event (the caller owns the transaction)."""
        return self.handlers[event.type](conn, event, suffix)

    def repair(self, conn: psycopg.Connection[TupleRow], history: Iterable[PublishedEvent],
               suffix: str = "") -> int:
        """Rebuild one aggregate's rows from all its events, in version order; returns how many."""
        events = sorted((e for e in history if self.handles(e)), key=lambda e: e.aggregate_version)
        if not events:
            return 0
        self.forget(conn, events[0], suffix)
        for event in events:
            self.apply(conn, event, suffix)
        return len(events)
