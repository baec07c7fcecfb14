"""Positions in the event store's log, kept by the processes that follow it (relay, reaper),
and the advisory lock that keeps one of each active."""

from __future__ import annotations

import logging
import threading
import zlib

import psycopg
from psycopg.rows import TupleRow

log = logging.getLogger("carprice.positions")


def position(conn: psycopg.Connection[TupleRow], name: str) -> int:
    """The last position `name` has fully dealt with (0 when it never ran)."""
    row = conn.execute("SELECT position FROM relay_position WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def advance(conn: psycopg.Connection[TupleRow], name: str, to: int) -> None:
    """Move `name` forward to `to` (never backwards: a late writer cannot undo progress)."""
    conn.execute(
        "INSERT INTO relay_position (name, position, updated_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now() "
        "WHERE relay_position.position < EXCLUDED.position", (name, to))


def rewind(conn: psycopg.Connection[TupleRow], name: str, to: int) -> None:
    """Set `name` to `to`, backwards too: everything after it is dealt with again."""
    conn.execute("INSERT INTO relay_position (name, position, updated_at) VALUES (%s, %s, now()) "
                 "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
                 (name, to))


def lock_key(name: str) -> int:
    # a signed 64-bit advisory lock key per role name
    return (0x63617270 << 32 | zlib.crc32(name.encode())) & 0x7FFFFFFFFFFFFFFF


def try_lock(conn: psycopg.Connection[TupleRow], name: str) -> bool:
    """Take the session lock of `name` if no other session holds it (True)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),)).fetchone()
    return bool(row and row[0])


def lead(conn: psycopg.Connection[TupleRow], name: str, stopping: threading.Event,
         poll: float = 1.0) -> bool:
    """Wait until this process holds the session lock of `name` (True), or stop is asked (False).

    The lock is held for as long as `conn` stays open: a crashed leader's lock is released
    with its connection, and a standby takes over within `poll` seconds.
    """
    waited = False
    while not stopping.is_set():
        if try_lock(conn, name):
            if waited:
                log.info("%s: took over as the active one", name)
            return True
        if not waited:
            log.info("%s: another one is active; standing by", name)
            waited = True
        stopping.wait(poll)
    return False


class Follower:
    """A log follower's leadership and position on one connection of its own (`with` opens it)."""

    def __init__(self, database_url: str, name: str) -> None:
        self.database_url, self.name = database_url, name
        self._conn: psycopg.Connection[TupleRow] | None = None

    def __enter__(self) -> Follower:
        self._conn = psycopg.connect(self.database_url, autocommit=True)
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is not None:
            self._conn.close()  # releases the leadership lock with it
            self._conn = None

    @property
    def conn(self) -> psycopg.Connection[TupleRow]:
        """The open connection (inside `with`)."""
        if self._conn is None:
            raise RuntimeError("use the follower inside `with`")
        return self._conn

    def lead(self, stopping: threading.Event) -> bool:
        """Wait to be the active one (see lead())."""
        return lead(self.conn, self.name, stopping)

    def lead_again(self) -> bool:
        """After the session was lost (a database restart): a new session, and the lock taken
        again if no one else took it meanwhile (True); psycopg.Error while the database does
        not answer."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=2)
        return try_lock(self._conn, self.name)

    def position(self) -> int:
        """The last position dealt with."""
        return position(self.conn, self.name)

    def advance(self, to: int) -> None:
        """Move forward to `to`."""
        advance(self.conn, self.name, to)

    def rewind(self, to: int) -> None:
        """Go back to `to`."""
        rewind(self.conn, self.name, to)

    def announce(self, channel: str, payload: str) -> None:
        """NOTIFY listeners (e.g. idle consumers: something was published)."""
        self.conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
