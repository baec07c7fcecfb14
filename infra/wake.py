"""A wake-up signal for idle consumers: PostgreSQL LISTEN on the channel the relay NOTIFYs.

A consumer with nothing to do stops fetching from the broker (Tansu 0.6 answers every fetch
only after its full wait, so keeping fetches short to keep latency low means spinning) and
sleeps on this connection instead; the relay's NOTIFY after each acknowledged batch wakes it.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from infra import listen

log = logging.getLogger("carprice.consumer")
PUBLISHED = "carprice_published"


class PgWaker:
    """wait(timeout) returns True as soon as something was published (False on timeout)."""

    def __init__(self, database_url: str, channel: str = PUBLISHED) -> None:
        self.database_url, self.channel = database_url, channel
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, autocommit=True)
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        return self._conn

    def wait(self, timeout: float) -> bool:
        """Sleep until a NOTIFY (True) or `timeout` seconds (False); drains what queued up."""
        with self._lock:
            try:
                return bool(listen.wait(self._connection(), timeout))
            except psycopg.Error as exc:
                log.warning("wake-up listener: %s; polling the broker instead", exc)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                return True  # do not sleep on a broken signal: go and look

    def close(self) -> None:
        """Stop listening."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
