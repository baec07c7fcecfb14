"""Rebuild a projection from the event store into fresh tables, then swap them in atomically."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from infra.published import PublishedEvent
from projections.apply import apply_events
from projections.registry import PROJECTIONS
from projections.schema import copy_tables, swap
from projections.state import CHANNEL

SUFFIX = "_rebuild"
ReadEvents = Callable[[int, int], list[PublishedEvent]]  # (after position, limit)
Progress = Callable[[int, int, float], None]  # (events read, position, events/s)


def _copy_all(conn: psycopg.Connection[TupleRow], name: str, read: ReadEvents, after: int,
              progress: Progress | None, started: float, seen: int) -> tuple[int, int]:
    while True:
        batch = read(after, 2000)
        if not batch:
            return after, seen
        with conn.transaction():
            apply_events(conn, batch, names=[name], suffix=SUFFIX)
        after = batch[-1].position
        seen += len(batch)
        if progress:
            progress(seen, after, seen / max(time.monotonic() - started, 1e-6))


def rebuild(conn: psycopg.Connection[TupleRow], name: str, read: ReadEvents,
            progress: Progress | None = None) -> int:
    """Replay every event into `<table>_rebuild`, catch up under a lock, swap; returns events read."""
    tables = PROJECTIONS[name].tables
    with conn.transaction():
        copy_tables(conn, tables, suffix=SUFFIX)
    started = time.monotonic()
    after, seen = _copy_all(conn, name, read, 0, progress, started, 0)
    with conn.transaction():
        # Readers and the live projector wait here a moment; nobody sees a half-built table.
        for table in tables:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(table)))
        after, seen = _copy_all(conn, name, read, after, progress, started, seen)
        swap(conn, tables, SUFFIX)
        # the rows no longer reflect the faults noted before: they are rebuilt from the store
        conn.execute("UPDATE projection_faults SET repaired_at = now() WHERE projection = %s "
                     "AND repaired_at IS NULL", (name,))
        conn.execute("SELECT pg_notify(%s, '*')", (CHANNEL,))  # every waiting reader looks again
    return seen
