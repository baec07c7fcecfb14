"""Idempotency-Key answers in PostgreSQL (`api_idempotency`): a key is claimed before its
request runs, its first answer kept; the API turns the refusals into 409 and 422.

A second request with the key while the first is still in flight is refused (KeyInFlight:
retry it, it then gets the first's answer); a different body is refused whether the first has
finished or not (KeyReused); a request that fails gives its claim back so the key can be used
again. A claim left by a process that died is taken over after STALE_CLAIM_SECONDS."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from psycopg.types.json import Jsonb

from infra.pg import Pool

STALE_CLAIM_SECONDS = 120


class KeyInFlight(Exception):
    """Another request holds this key and has not answered yet."""

    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress; retry "
                         "shortly to get its answer")


class KeyReused(Exception):
    """The key came back with another body than the one it was first used with."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request body")


def reused(digest: str, stored: str) -> None:
    """KeyReused when a key comes back with another body than its first."""
    if stored != digest:
        raise KeyReused


class Idempotency(Protocol):
    """Where the first answer to each key is kept."""

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None:
        """The first answer of this key, or None when this request has claimed it (run it,
        then `remember` or `release`); KeyInFlight while another request holds it, KeyReused
        on another body."""
        ...

    def remember(self, user: UUID, route: str, key: str, digest: str,
                 response: dict[str, Any]) -> None: ...

    def release(self, user: UUID, route: str, key: str) -> None:
        """Give back a claim whose request failed (nothing was remembered)."""
        ...


class PgIdempotency:
    """The `api_idempotency` table."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None:
        """See Idempotency.replay: one upsert claims the key or returns who holds it."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO api_idempotency AS i (user_id, route, key, body_sha256, response) "
                "VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (user_id, route, key) DO UPDATE "
                "SET created_at = now() WHERE i.response IS NULL AND i.body_sha256 = %s "
                "AND i.created_at < now() - make_interval(secs => %s) RETURNING 1",
                (user, route, key, digest, digest, STALE_CLAIM_SECONDS)).fetchone()
            if row is not None:
                return None  # claimed (or a dead request's stale claim taken over)
            held = conn.execute("SELECT body_sha256, response FROM api_idempotency WHERE "
                                "user_id = %s AND route = %s AND key = %s",
                                (user, route, key)).fetchone()
        if held is None:  # released between the two statements: the caller may retry
            raise KeyInFlight
        reused(digest, held[0])
        if held[1] is None:
            raise KeyInFlight
        return held[1]  # type: ignore[no-any-return]

    def remember(self, user: UUID, route: str, key: str, digest: str,
                 response: dict[str, Any]) -> None:
        """Store the first response of a claimed key."""
        with self.pool.connection() as conn:
            conn.execute("UPDATE api_idempotency SET response = %s WHERE user_id = %s AND "
                         "route = %s AND key = %s AND body_sha256 = %s AND response IS NULL",
                         (Jsonb(response), user, route, key, digest))

    def release(self, user: UUID, route: str, key: str) -> None:
        """Delete a claim that has no response."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM api_idempotency WHERE user_id = %s AND route = %s AND "
                         "key = %s AND response IS NULL", (user, route, key))
