"""Idempotency-Key: the same key and body answer the first response; another body is refused."""

from __future__ import annotations

import hashlib
import json
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


class Idempotency(Protocol):
    """Where the first answer to each key is kept."""

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None: ...
    def remember(self, user: UUID, route: str, key: str, digest: str,
                 response: dict[str, Any]) -> None: ...


class PgIdempotency:
    """The `api_idempotency` table."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def replay(self, user: UUID, route: str, key: str, digest: str) -> dict[str, Any] | None:
        """The stored response of this key, or None; 422 when the key came with another body."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT body_sha256, response FROM api_idempotency WHERE user_id = %s "
                               "AND route = %s AND key = %s", (user, route, key)).fetchone()
        if row is None:
            return None
        if row[0] != digest:
            raise ApiError(422, "Idempotency-Key reused",
                           "this Idempotency-Key was used with a different request body")
        return row[1]  # type: ignore[no-any-return]

    def remember(self, user: UUID, route: str, key: str, digest: str,
                 response: dict[str, Any]) -> None:
        """Store the first response of a key."""
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO api_idempotency (user_id, route, key, body_sha256, response) "
                         "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (user, route, key, digest, Jsonb(response)))
