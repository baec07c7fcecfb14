"""The reaper: every charge ends. Jobs past their deadline are failed and their holds released,
once; promotional grants past their time expire, once.

It follows the event store's log itself (not Kafka, not the read tables), so a job that was
never delivered, or whose consumer or projector is down, still ends. It keeps the open jobs
with their deadlines in `reaper_open_jobs` and the running grants in `reaper_open_grants`,
advanced with its position in one transaction. The wallet decides whether a grant is still
to expire, so a reaper that restarts, or races a command that expired it first, records
nothing twice.
One reaper is active at a time (an advisory lock); others stand by.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from commands.application import CarpriceApp
from domain.errors import JobNotFound
from domain.events import (
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_REQUESTED,
    WALLET_GRANT_EXPIRED,
    WALLET_GRANTED,
)
from infra import positions
from infra.pg import DATABASE_DOWN, reconnecting
from infra.published import PublishedEvent

DATABASE_OR_OS: tuple[type[Exception], ...] = (*DATABASE_DOWN, OSError)
log = logging.getLogger("carprice.reaper")
NAME = "reaper"
PAGE = 1000
class Reaper:
    """Follows job events, expires overdue jobs; `step()` is one round."""

    def __init__(self, app: CarpriceApp, database_url: str, interval: float = 1.0) -> None:
        self.app = app
        self.database_url = database_url
        self.interval = interval
        self.stopping = threading.Event()
        self.expired = 0
        self.grants_expired = 0

    def run(self) -> None:
        """Reap until stop() is called; wait for the leader lock first. When the database goes
        away its session, and the lock, go with it: connect again, lead again, go on."""
        reconnecting("reaper", self.stopping, self._lead_and_reap,
                     recover=self.app.discard_broken_connections)

    def _lead_and_reap(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            if not positions.lead(conn, NAME, self.stopping):
                return
            log.info("reaper: active; jobs without an outcome by their deadline are refunded")
            while not self.stopping.is_set():
                try:
                    self.step(conn)
                except DATABASE_OR_OS as exc:
                    if conn.broken or conn.closed:
                        raise  # the session (and the lock) is gone: connect and lead again
                    log.warning("reaper: database unavailable (%s); trying again", exc)
                self.stopping.wait(self.interval)

    def stop(self) -> None:
        """Ask the loop to stop after the round in progress."""
        self.stopping.set()

    def step(self, conn: psycopg.Connection[TupleRow]) -> int:
        """Follow the log, then expire what is overdue; returns how many jobs expired."""
        self.follow(conn)
        self.expire_grants(conn)
        return self.expire_overdue(conn)

    def follow(self, conn: psycopg.Connection[TupleRow]) -> None:
        """Bring the open jobs up to the store's head."""
        at = positions.position(conn, NAME)
        while True:
            head = self.app.head_position()  # before the read: every id up to it is committed
            events = self.app.published_after(at, PAGE, topics=[
                JOB_REQUESTED, JOB_COMPLETED, JOB_FAILED, WALLET_GRANTED, WALLET_GRANT_EXPIRED])
            with conn.transaction():
                for event in events:
                    self._note(conn, event)
                last = events[-1].position if events else at
                at = last if len(events) == PAGE else max(head, last)
                positions.advance(conn, NAME, at)
            if len(events) < PAGE:
                return

    def _note(self, conn: psycopg.Connection[TupleRow], event: PublishedEvent) -> None:
        if event.type == WALLET_GRANTED:
            conn.execute("INSERT INTO reaper_open_grants (user_id, grant_id, expires_at) VALUES "
                         "(%s, %s, %s) ON CONFLICT DO NOTHING",
                         (event.user_id, event.data["grant_id"], event.data["expires_at"]))
            return
        if event.type == WALLET_GRANT_EXPIRED:
            conn.execute("DELETE FROM reaper_open_grants WHERE user_id = %s AND grant_id = %s",
                         (event.user_id, event.data["grant_id"]))
            return
        if event.type != JOB_REQUESTED:
            conn.execute("DELETE FROM reaper_open_jobs WHERE job_id = %s", (event.aggregate_id,))
            return
        raw = event.data.get("deadline")
        deadline = (datetime.fromisoformat(raw) if isinstance(raw, str) else
                    event.timestamp + timedelta(seconds=self.app.deadline_seconds))
        conn.execute("INSERT INTO reaper_open_jobs (job_id, user_id, deadline) VALUES (%s, %s, %s) "
                     "ON CONFLICT (job_id) DO NOTHING", (event.aggregate_id, event.user_id, deadline))

    def expire_overdue(self, conn: psycopg.Connection[TupleRow], limit: int = 500) -> int:
        """Fail and refund the jobs whose deadline has passed (a job that ended is skipped)."""
        rows = conn.execute("SELECT job_id, user_id FROM reaper_open_jobs WHERE deadline <= now() "
                            "ORDER BY deadline LIMIT %s", (limit,)).fetchall()
        expired = 0
        for job_id, user_id in rows:
            try:
                done = self.app.expire_prediction(UUID(str(job_id)))
            except JobNotFound:
                done = False
            if done:
                expired += 1
                log.warning("job %s expired: failed and refunded", job_id,
                            extra={"job_id": job_id, "user_id": user_id})
            conn.execute("DELETE FROM reaper_open_jobs WHERE job_id = %s", (job_id,))
        self.expired += expired
        return expired

    def expire_grants(self, conn: psycopg.Connection[TupleRow], limit: int = 500) -> int:
        """Expire what is left of the grants whose time has come; returns how many expired."""
        rows = conn.execute("SELECT DISTINCT user_id FROM reaper_open_grants WHERE expires_at <= "
                            "now() LIMIT %s", (limit,)).fetchall()
        expired = 0
        for (user_id,) in rows:
            # the row goes when the expiry is followed from the log (next round)
            n = self.app.expire_grants(UUID(str(user_id)))
            if n:
                log.info("%d grant(s) of user %s expired", n, user_id, extra={"user_id": user_id})
            expired += n
        self.grants_expired += expired
        return expired
