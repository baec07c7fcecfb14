"""Idempotency-Key: the same key and body answer the first response; another body is refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from api.errors import ApiError
from domain.text import text_problem

DDL = """CREATE TABLE IF NOT EXISTS api_idempotency (
    user_id uuid NOT NULL, route text NOT NULL, key text NOT NULL, body_sha256 text NOT NULL,
    response jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, route, key))"""


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


def replay(conn: psycopg.Connection[Any], user: UUID, route: str, key: str,
           digest: str) -> dict[str, Any] | None:
    """The stored response of this key, or None; 422 when the key came with another body."""
    row = conn.execute("SELECT body_sha256, response FROM api_idempotency WHERE user_id = %s AND "
                       "route = %s AND key = %s", (user, route, key)).fetchone()
    if row is None:
        return None
    if row[0] != digest:
        raise ApiError(422, "Idempotency-Key reused",
                       "this Idempotency-Key was used with a different request body")
    return row[1]  # type: ignore[no-any-return]


def remember(conn: psycopg.Connection[Any], user: UUID, route: str, key: str, digest: str,
             response: dict[str, Any]) -> None:
    """Store the first response of a key."""
    conn.execute("INSERT INTO api_idempotency (user_id, route, key, body_sha256, response) "
                 "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (user, route, key, digest, Jsonb(response)))
