"""Idempotency-Key: the same key and body answer the first response; another body is refused.

A key is claimed before its request runs: a second request with the key while the first is
still in flight gets 409 (retry it; it then gets the first's answer), a different body gets
422 whether the first has finished or not, and a request that fails gives its claim back so
the key can be used again. A claim left by a process that died is taken over after
STALE_CLAIM_SECONDS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from api.errors import ApiError
from domain.text import text_problem


def body_hash(body: Any) -> str:
    """A stable hash of a request body."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None) -> str | None:
    """The key, if it is a reasonable one."""
    if key is None:
        return None
    if not 1 <= len(key) <= 200:
        raise ApiError(422, "Invalid Idempotency-Key", "Idempotency-Key must be 1 to 200 characters")
    if problem := text_problem(key):
        raise ApiError(422, "Invalid Idempotency-Key", f"Idempotency-Key {problem}")
    return key


STALE_CLAIM_SECONDS = 120


def reused(digest: str, stored: str) -> None:
    """422 when a key comes back with another body than the one it was first used with."""
    if stored != digest:
        raise ApiError(422, "Idempotency-Key reused",
                       "this Idempotency-Key was used with a different request body")


IN_FLIGHT = ApiError(409, "Request in progress", "a request with this Idempotency-Key is still "
                     "in progress; retry shortly to get its answer", {"Retry-After": "1"})


class Idempotency(Protocol):
    """Where the first answer to each key is kept."""

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None:
        """The first answer of this key, or None when this request has claimed it (run it,
        then `remember` or `release`); 409 while another request holds it, 422 on another body."""
        ...

    def remember(self, user: UUID, route: str, key: str, digest: str,
                 response: dict[str, Any]) -> None: ...

    def release(self, user: UUID, route: str, key: str) -> None:
        """Give back a claim whose request failed (nothing was remembered)."""
        ...


@contextmanager
def claimed(keys: Idempotency, user: UUID, route: str, key: str | None) -> Iterator[None]:
    """The block that runs a claimed request: when it fails, the key is given back."""
    try:
        yield
    except BaseException:
        if key:
            keys.release(user, route, key)
        raise


class PgIdempotency:
    """The `api_idempotency` table."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
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
            raise IN_FLIGHT
        reused(digest, held[0])
        if held[1] is None:
            raise IN_FLIGHT
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
