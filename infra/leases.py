"""Partitions shared among the live members of a role by PostgreSQL advisory locks.

Inference scales out over a topic's partitions. A Kafka consumer group would share them, but
a group hands a dead member's partitions over only after its session times out and the group
rebalances (Tansu 0.6 adds a 3 s pause to a rejoin; docs/operations.md), and while it
rebalances nobody consumes. Here each member holds:

- a *shared* advisory lock on its role: the holders of it are the live members, and the order
  of their backend pids gives each a rank;
- an *exclusive* advisory lock per partition it reads (a lease), on the same session.

A member's fair share of P partitions among N members is P // N, one more for the first
P % N ranks. Every `refresh` it gives up what it holds beyond its share (its positions are
saved first: the loop commits before it refreshes) and leases free partitions up to it.
A member that dies (SIGKILL, lost host) loses its session, and with it every lock, the moment
PostgreSQL sees its connection close: the others take its partitions at their next refresh,
without waiting out a session or stopping to rebalance. A new member gets its share as the
others give theirs up, each at its own next refresh; the rest keep consuming meanwhile.

Positions are kept in `consumer_positions` on the same connection: per partition the last
offset handled and the store position of the event there (consumers/assignment.py checks it
before trusting the offset).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import psycopg
from psycopg.rows import TupleRow

from infra.positions import lock_key, try_lock

log = logging.getLogger("carprice.leases")

# partition -> (last Kafka offset handled, the store position of the event there)
Marks = Mapping[int, tuple[int, int | None]]


def _halves(key: int) -> tuple[int, int]:
    """(classid, objid) of a bigint advisory lock key as pg_locks shows it."""
    return (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


class Leases:
    """One member's leases on the partitions of `topic` among the live members of `role`.

    After its session was lost (a database restart ends every member's), a member leases again
    what it held, and takes no other partition for `grace` seconds: the members reconnect one
    by one, and the first back would otherwise see itself alone and take everything, only to
    give it back a renewal later.
    """

    def __init__(self, database_url: str, role: str, topic: str, grace: float = 2.0) -> None:
        self.database_url, self.role, self.topic, self.grace = database_url, role, topic, grace
        self.held: set[int] = set()
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._member_key = lock_key(f"member:{role}:{topic}")
        self._sessions = 0
        self._patient_until = 0.0  # no new partitions before this (monotonic), after a loss

    # ------------------------------------------------------------------ the session

    def _session(self) -> psycopg.Connection[TupleRow]:
        """The open session; a new one (re-leasing what was held) after it was lost."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.close()
        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (self._member_key,))
        kept = {p for p in sorted(self.held) if self._try(conn, p)}
        if kept != self.held:
            log.warning("%s: after its session was lost, %s partitions %s went to others",
                        self.role, self.topic, sorted(self.held - kept))
        if self._sessions:
            self._patient_until = time.monotonic() + self.grace
        self.held, self._conn, self._sessions = kept, conn, self._sessions + 1
        return conn

    def close(self) -> None:
        """End the session: every lease is released with it."""
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def _lease(self, partition: int) -> str:
        return f"lease:{self.role}:{self.topic}:{partition}"

    def _try(self, conn: psycopg.Connection[TupleRow], partition: int) -> bool:
        return try_lock(conn, self._lease(partition))

    # ------------------------------------------------------------------ sharing

    def members(self) -> tuple[int, int]:
        """(live members, this one's rank among them)."""
        conn = self._session()
        classid, objid = _halves(self._member_key)
        pids = [int(r[0]) for r in conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid = %s AND objid = %s AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY pid",
            (classid, objid)).fetchall()]
        me = conn.info.backend_pid
        return max(1, len(pids)), pids.index(me) if me in pids else len(pids)

    def balance(self, partitions: set[int]) -> set[int]:
        """Give up what is beyond this member's share of `partitions`, lease free ones up to
        it; the partitions held afterwards. The positions of those given up must already be
        saved. A session that was lost is opened again at once; a database that does not
        answer: keep what is held (raises nothing)."""
        for attempt in (1, 2):
            try:
                return self._balance(partitions)
            except psycopg.Error as exc:
                self.close()
                if attempt == 2:
                    log.warning("%s: could not renew its leases on %s (%s: %s); keeping %d "
                                "partition(s) until the database answers", self.role, self.topic,
                                type(exc).__name__, str(exc)[:200], len(self.held))
        return set(self.held)

    def _balance(self, partitions: set[int]) -> set[int]:
        count, rank = self.members()
        share = len(partitions) // count + (1 if rank < len(partitions) % count else 0)
        conn = self._session()
        for gone in sorted(self.held - partitions):  # no longer in the topic
            self._release(conn, gone)
        surplus = len(self.held) - share
        for p in sorted(self.held, reverse=True)[:max(0, surplus)]:
            self._release(conn, p)
        if len(self.held) < share and time.monotonic() >= self._patient_until:
            free = sorted(partitions - self.held)
            start = (rank * len(partitions)) // count  # members start looking in different places
            for p in free[start:] + free[:start]:
                if len(self.held) >= share:
                    break
                if self._try(conn, p):
                    self.held.add(p)
        return set(self.held)

    def _release(self, conn: psycopg.Connection[TupleRow], partition: int) -> None:
        conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(self._lease(partition)),))
        self.held.discard(partition)

    # ------------------------------------------------------------------ positions

    def saved(self) -> dict[int, tuple[int, int]]:
        """partition -> (offset, store position) last handled by any member of the role."""
        rows = self._session().execute(
            "SELECT partition, kafka_offset, position FROM consumer_positions "
            "WHERE consumer = %s AND topic = %s AND position IS NOT NULL",
            (self.role, self.topic)).fetchall()
        return {int(p): (int(o), int(pos)) for p, o, pos in rows}

    def save(self, marks: Marks) -> None:
        """Record the last message handled on each partition (the latest wins: an offset can
        go down when the topic was published anew)."""
        if not marks:
            return
        rows = [(self.role, self.topic, p, offset, position)
                for p, (offset, position) in sorted(marks.items())]
        with self._session().cursor() as cur:
            cur.executemany(
                "INSERT INTO consumer_positions (consumer, topic, partition, kafka_offset, position, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, now()) "
                "ON CONFLICT (consumer, topic, partition) DO UPDATE SET "
                "kafka_offset = EXCLUDED.kafka_offset, position = EXCLUDED.position, "
                "updated_at = now()", rows)


def lag(conn: psycopg.Connection[TupleRow], consumer: str, topic: str,
        end_offsets: Mapping[int, int]) -> int:
    """Messages of `topic` after the positions `consumer` saved (a partition it never read
    counts from 0)."""
    rows = conn.execute("SELECT partition, kafka_offset FROM consumer_positions "
                        "WHERE consumer = %s AND topic = %s", (consumer, topic)).fetchall()
    saved = {int(p): int(o) for p, o in rows}
    return sum(max(0, end - (saved[p] + 1 if p in saved else 0)) for p, end in end_offsets.items())
