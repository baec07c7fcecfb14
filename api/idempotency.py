"""Idempotency-Key over HTTP: the header checked, the body hashed, a failed request's claim
given back. The keys are kept by infra.idempotency (409 while the first request is in flight,
422 for another body: api/errors.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from api.errors import ApiError
from domain.text import text_problem
from infra.idempotency import Idempotency


def body_hash(body: object) -> str:
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


@contextmanager
def claimed(keys: Idempotency, user: UUID, route: str, key: str | None) -> Iterator[None]:
    """The block that runs a claimed request: when it fails, the key is given back."""
    try:
        yield
    except BaseException:
        if key:
            keys.release(user, route, key)
        raise
