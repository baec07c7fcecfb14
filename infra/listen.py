"""Waiting for PostgreSQL notifications without waking up in between.

psycopg's `notifies()` wakes every 100 ms to look for Ctrl-C (its wait interval). On an idle
system every such listener is a process that never sleeps: these helpers wait on the
connection's socket instead, so a listener costs nothing until a notification arrives.
The connection must be used for nothing but LISTEN.
"""

from __future__ import annotations

import select

import psycopg
from psycopg.rows import Row


def drain(conn: psycopg.BaseConnection[Row]) -> list[str]:
    """The payloads of the notifications that arrived (reads what the socket holds)."""
    pgconn = conn.pgconn
    pgconn.consume_input()  # raises psycopg.OperationalError when the server went away
    payloads = []
    while (note := pgconn.notifies()) is not None:
        payloads.append(note.extra.decode())
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("the LISTEN connection was closed")
    return payloads


def wait(conn: psycopg.Connection[Row], timeout: float) -> list[str]:
    """Block until notifications arrive (their payloads) or `timeout` seconds pass ([])."""
    payloads = drain(conn)  # some may be buffered already
    if payloads:
        return payloads
    readable, _, _ = select.select([conn.pgconn.socket], [], [], max(0.0, timeout))
    return drain(conn) if readable else []
