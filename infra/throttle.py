"""Sign-in and sign-up throttling, shared by every API replica (counters in PostgreSQL).

Failed sign-ins count per (email, client) and per client, so an attacker who guesses at an
account from one address locks only that address out of that account: its owner, signing in
from anywhere else, is never affected. A success resets the (email, client) count. Every
sign-in, successful or not, also counts per client (`signins`): each costs an argon2 hash, and
a stream of correct passwords from one address must not buy unlimited CPU. The client is the
browser's address when the dashboard vouches for it (api/routes/auth.py), so sign-ins typed
into the dashboard are not all one client. Each
attempt takes its slot first (one atomic upsert), so concurrent attempts cannot all slip
under the limit; a success gives it back. Keys are stored as hashes: no email in the table.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from infra.pg import Pool

CLEAN_EVERY_SECONDS = 600


@dataclass(frozen=True)
class Limit:
    """At most `hits` in any fixed window of `seconds`."""

    hits: int
    seconds: int


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()


class Throttle:
    """Fixed-window counters keyed by hashes of (purpose, email, client)."""

    def __init__(self, pool: Pool, account: Limit, client: Limit,
                 signups: Limit, signins: Limit | None = None) -> None:
        self.pool, self.account, self.client, self.signups = pool, account, client, signups
        self.signins = signins or Limit(60, client.seconds)
        self._cleaned = 0.0

    def _take(self, conn: psycopg.Connection[TupleRow], key: str, limit: Limit) -> int:
        """Count one attempt; 0 when it is within the limit, else seconds until it is."""
        row = conn.execute(
            "INSERT INTO api_throttle AS t (key, window_start, hits) VALUES (%s, now(), 1) "
            "ON CONFLICT (key) DO UPDATE SET "
            "hits = CASE WHEN t.window_start <= now() - make_interval(secs => %s) THEN 1 "
            "ELSE t.hits + 1 END, "
            "window_start = CASE WHEN t.window_start <= now() - make_interval(secs => %s) "
            "THEN now() ELSE t.window_start END "
            "RETURNING hits, extract(epoch FROM t.window_start + make_interval(secs => %s) - now())",
            (key, limit.seconds, limit.seconds, limit.seconds)).fetchone()
        assert row is not None  # noqa: S101 - an upsert returns its row
        hits, left = int(row[0]), float(row[1])
        return 0 if hits <= limit.hits else max(1, int(left) + 1)

    def sign_in_attempt(self, email: str, client: str) -> int:
        """Take this attempt's slots; 0 when it may go ahead, else seconds to wait."""
        with self.pool.connection() as conn:
            self._clean(conn)
            wait = max(self._take(conn, _key("signin", email, client), self.account),
                       self._take(conn, _key("signin-client", client), self.client),
                       self._take(conn, _key("signin-any", client), self.signins))
        return wait

    def sign_in_succeeded(self, email: str, client: str) -> None:
        """A correct password: the account's count for this client starts again, and the
        client's count gets this attempt back."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM api_throttle WHERE key = %s", (_key("signin", email, client),))
            conn.execute("UPDATE api_throttle SET hits = greatest(hits - 1, 0) WHERE key = %s",
                         (_key("signin-client", client),))

    def confirm_attempt(self, user: str) -> int:
        """Take a slot for confirming a signed-in account's password (an erasure): counted per
        account only (the caller holds its token); a success gives it back."""
        with self.pool.connection() as conn:
            return self._take(conn, _key("confirm", user), self.account)

    def confirm_succeeded(self, user: str) -> None:
        """The password was right: the account's count starts again."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM api_throttle WHERE key = %s", (_key("confirm", user),))

    def sign_up_attempt(self, client: str) -> int:
        """Take a sign-up slot of this client; 0 when it may go ahead, else seconds to wait."""
        with self.pool.connection() as conn:
            return self._take(conn, _key("signup", client), self.signups)

    def _clean(self, conn: psycopg.Connection[TupleRow]) -> None:
        now = time.monotonic()
        if now - self._cleaned > CLEAN_EVERY_SECONDS:
            self._cleaned = now
            conn.execute("DELETE FROM api_throttle WHERE window_start < now() - interval '1 day'")
