"""`carprice webhooks`: sends the deliveries the projector queued, at least once.

A sender claims due deliveries with FOR UPDATE SKIP LOCKED and a lease (next_attempt_at moves
`lease` seconds ahead, attempts + 1), so several senders share the work and a crashed one's
claims come due again; it POSTs them in parallel, signed (infra/webhook_http.py), and records
the outcome: delivered (2xx), due again after a backoff that doubles, or failed for good after
`max_attempts`. Between deliveries it sleeps on the projector's NOTIFY, or until the next is
due; it never polls in a tight loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import psycopg
from psycopg.rows import TupleRow

from infra.pg import Pool
from infra.webhook_http import SIGNATURE_HEADER, Outcome, sign, standard_headers

log = logging.getLogger("carprice.webhooks")


class Post(Protocol):
    """Sends one delivery (infra.webhook_http.Poster.post)."""

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome: ...


class Waker(Protocol):
    """Wakes the sender when deliveries were queued (infra.wake.PgWaker)."""

    def wait(self, timeout: float) -> bool: ...


@dataclass
class Retry:
    """When to try again: base * 2^(attempt-1) seconds, at most `cap`, +-20 % jitter."""

    max_attempts: int = 10
    base: float = 2.0
    cap: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds before attempt `attempt` + 1."""
        return float(min(self.cap, self.base * 2 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2))  # noqa: S311


@dataclass
class Claimed:
    """A delivery this sender holds the lease of."""

    delivery_id: str
    event: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    url: str
    secret: str

    def body(self) -> bytes:
        """The JSON sent (the same on every attempt)."""
        return orjson.dumps({"id": self.delivery_id, "type": self.event,
                             "created_at": self.created_at.isoformat(), "data": self.payload})


CLAIM = """UPDATE webhook_deliveries d SET attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => %(lease)s)
    FROM webhooks w JOIN webhook_secrets s ON s.user_id = w.user_id
    WHERE d.webhook_id = w.webhook_id AND d.delivery_id IN (
        SELECT delivery_id FROM webhook_deliveries WHERE status = 'pending'
        AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
    RETURNING d.delivery_id::text, d.event, d.payload, d.attempts, d.created_at, w.url, s.secret"""


class Sender:
    """Claims, sends and records webhook deliveries until stop()."""

    def __init__(self, pool: Pool, post: Post, waker: Waker | None = None,
                 retry: Retry | None = None, batch: int = 50, concurrency: int = 8,
                 lease: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.pool, self.post, self.waker = pool, post, waker
        self.retry = retry or Retry()
        self.batch, self.lease, self.clock = batch, lease, clock
        self.pool_of_threads = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook")
        self.stopping = threading.Event()
        self.delivered = self.retried = self.failed = 0

    def run(self) -> None:
        """Send what is due; sleep until more is queued or comes due."""
        log.info("webhooks: sending")
        while not self.stopping.is_set():
            try:
                if self.send_due():
                    continue
                self._sleep(self._next_due())
            except Exception as exc:  # noqa: BLE001 - the database comes back; so do we
                log.warning("webhooks: %s: %s; trying again in 2 s", type(exc).__name__, exc)
                self.stopping.wait(2.0)
        self.pool_of_threads.shutdown(wait=True)
        log.info("webhooks: stopped (%d delivered, %d retried, %d failed)", self.delivered,
                 self.retried, self.failed)

    def stop(self) -> None:
        """Stop after the deliveries in flight."""
        self.stopping.set()

    def send_due(self) -> int:
        """Claim up to `batch` due deliveries, send them, record what happened; how many."""
        with self.pool.connection() as conn:
            rows = conn.execute(CLAIM, {"lease": self.lease, "limit": self.batch}).fetchall()
        claimed = [Claimed(*r) for r in rows]
        outcomes = list(self.pool_of_threads.map(self._send, claimed))
        with self.pool.connection() as conn, conn.transaction():
            for c, outcome in zip(claimed, outcomes, strict=True):
                self._record(conn, c, outcome)
        return len(claimed)

    def _send(self, c: Claimed) -> Outcome:
        body, now = c.body(), int(self.clock())
        return self.post(c.url, body, {"Carprice-Event": c.event, "Carprice-Delivery": c.delivery_id,
                                       SIGNATURE_HEADER: sign(c.secret, now, body),
                                       **standard_headers(c.secret, c.delivery_id, now, body)})

    def _record(self, conn: psycopg.Connection[TupleRow], c: Claimed, outcome: Outcome) -> None:
        if outcome.delivered:
            self.delivered += 1
            conn.execute("UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(), "
                         "last_status = %s, last_error = NULL WHERE delivery_id = %s",
                         (outcome.status, c.delivery_id))
        elif c.attempts >= self.retry.max_attempts:
            self.failed += 1
            log.warning("webhooks: delivery %s to %s failed for good after %d attempts: %s",
                        c.delivery_id, c.url, c.attempts, outcome.error)
            conn.execute("UPDATE webhook_deliveries SET status = 'failed', last_status = %s, "
                         "last_error = %s WHERE delivery_id = %s",
                         (outcome.status, outcome.error, c.delivery_id))
        else:
            self.retried += 1
            delay = self.retry.delay(c.attempts)
            log.info("webhooks: delivery %s to %s: %s; attempt %d in %.1f s", c.delivery_id, c.url,
                     outcome.error, c.attempts + 1, delay)
            conn.execute("UPDATE webhook_deliveries SET next_attempt_at = now() + "
                         "make_interval(secs => %s), last_status = %s, last_error = %s "
                         "WHERE delivery_id = %s", (delay, outcome.status, outcome.error, c.delivery_id))

    def _next_due(self) -> float:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 "
                               "FROM webhook_deliveries WHERE status = 'pending'").fetchone()
        return 30.0 if row is None or row[0] is None else max(0.05, min(30.0, float(row[0])))

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.waker is None:
                self.stopping.wait(min(left, 1.0))
            elif self.waker.wait(min(left, 1.0)):
                return
