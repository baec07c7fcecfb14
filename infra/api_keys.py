"""API keys' lookup rows: what a request's key is checked against, at once on every replica.

The events (domain.api_key) say who issued which key and when it was revoked; this table is
what a request reads, in the same round trip that counts it against the key's rate limit and
notes its last use. It holds the SHA-256 of each secret, never the secret (a 32-byte random
secret needs no slow hash: there is nothing to guess). A revoked key's row is marked at once
and every API process reads the row on every request, so a revocation holds on every replica
from the moment it commits; erasure deletes the rows.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore

    from infra.pg import AsyncPool

WINDOW_SECONDS = 60  # the rate limit's window


def digest(secret: str) -> bytes:
    """What the table keeps of a secret."""
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class KeyRow:
    """A key as its owner lists it (no secret, no hash)."""

    key_id: UUID
    user_id: UUID
    name: str
    prefix: str
    scopes: tuple[str, ...]
    rate_limit_per_minute: int
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Grant:
    """What a request signed with a live key may do, and how much of its minute is left."""

    key_id: UUID
    user_id: UUID
    prefix: str
    scopes: frozenset[str]
    allowed: bool  # within the rate limit
    retry_after: int  # seconds until the window turns, when not allowed


class ApiKeyStore(Protocol):
    """The write side's view of the table."""

    def add(self, row: KeyRow, secret_hash: bytes) -> None: ...
    def remove(self, key_id: UUID) -> None: ...
    def revoke(self, key_id: UUID) -> None: ...
    def of_user(self, user_id: UUID) -> list[KeyRow]: ...
    def delete_all(self, user_id: UUID) -> int: ...


class MemoryApiKeys:
    """In memory, beside the in-memory event store (tests)."""

    def __init__(self) -> None:
        self.rows: dict[UUID, tuple[KeyRow, bytes]] = {}
        self._lock = threading.Lock()

    def add(self, row: KeyRow, secret_hash: bytes) -> None:
        with self._lock:
            self.rows[row.key_id] = (row, secret_hash)

    def remove(self, key_id: UUID) -> None:
        with self._lock:
            self.rows.pop(key_id, None)

    def revoke(self, key_id: UUID) -> None:
        with self._lock:
            if key_id in self.rows and self.rows[key_id][0].revoked_at is None:
                row, hashed = self.rows[key_id]
                self.rows[key_id] = (replace(row, revoked_at=datetime.now(UTC)), hashed)

    def of_user(self, user_id: UUID) -> list[KeyRow]:
        return sorted((r for r, _ in self.rows.values() if r.user_id == user_id),
                      key=lambda r: r.created_at)

    def delete_all(self, user_id: UUID) -> int:
        with self._lock:
            gone = [k for k, (r, _) in self.rows.items() if r.user_id == user_id]
            for k in gone:
                del self.rows[k]
            return len(gone)


_COLUMNS = ("key_id, user_id, name, prefix, scopes, rate_limit_per_minute, created_at, "
            "last_used_at, revoked_at")


def _row(r: dict[str, object]) -> KeyRow:
    return KeyRow(UUID(str(r["key_id"])), UUID(str(r["user_id"])), str(r["name"]), str(r["prefix"]),
                  tuple(r["scopes"]), int(r["rate_limit_per_minute"]),  # type: ignore[arg-type,call-overload]
                  r["created_at"], r["last_used_at"], r["revoked_at"])  # type: ignore[arg-type]


class PostgresApiKeys:
    """The `api_keys` table, on the event store's connections."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def add(self, row: KeyRow, secret_hash: bytes) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("INSERT INTO api_keys (key_id, user_id, name, prefix, scopes, "
                        "rate_limit_per_minute, secret_hash, created_at) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (row.key_id, row.user_id, row.name, row.prefix, list(row.scopes),
                         row.rate_limit_per_minute, secret_hash, row.created_at))

    def remove(self, key_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("DELETE FROM api_keys WHERE key_id = %s", (key_id,))

    def revoke(self, key_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s "
                        "AND revoked_at IS NULL", (key_id,))

    def of_user(self, user_id: UUID) -> list[KeyRow]:
        with self.datastore.transaction() as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE user_id = %s "  # noqa: S608 - constant
                               "ORDER BY created_at", (user_id,)).fetchall()
        return [_row(r) for r in rows]

    def delete_all(self, user_id: UUID) -> int:
        with self.datastore.transaction(commit=True) as cur:
            return cur.execute("DELETE FROM api_keys WHERE user_id = %s", (user_id,)).rowcount


def api_keys_for(recorder: object) -> ApiKeyStore:
    """The key table beside an event store's recorder."""
    datastore = getattr(recorder, "datastore", None)
    if datastore is not None and hasattr(datastore, "transaction"):
        return PostgresApiKeys(datastore)
    return MemoryApiKeys()


# One round trip per request: the live key whose id and secret these are, counted against its
# minute (a fixed window per key), its last use noted. No row: unknown, wrong or revoked.
_USE = """
UPDATE api_keys SET
    window_start = CASE WHEN window_start <= now() - make_interval(secs => %(window)s)
                        THEN now() ELSE window_start END,
    hits = CASE WHEN window_start <= now() - make_interval(secs => %(window)s)
                THEN 1 ELSE hits + 1 END,
    last_used_at = now()
WHERE key_id = %(key_id)s AND secret_hash = %(hash)s AND revoked_at IS NULL
RETURNING user_id, prefix, scopes, hits <= rate_limit_per_minute AS allowed,
    GREATEST(1, CEIL(EXTRACT(EPOCH FROM window_start + make_interval(secs => %(window)s) - now())))::int
        AS retry_after
"""


def parse(secret: str) -> UUID | None:
    """The key id inside a secret (`cpk_<32 hex>_<random>`); None if it is not one."""
    if not secret.startswith("cpk_"):
        return None
    body = secret[4:]
    key_hex, _, rest = body.partition("_")
    if len(key_hex) != 32 or not rest:
        return None
    try:
        return UUID(hex=key_hex)
    except ValueError:
        return None


class KeyLookup:
    """The API's side: a request's key, checked and counted on the read pool."""

    def __init__(self, pool: AsyncPool) -> None:
        self.pool = pool

    async def use(self, secret: str) -> Grant | None:
        """The grant of a live key, counted; None for an unknown, wrong or revoked one."""
        key_id = parse(secret)
        if key_id is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(_USE, {"window": WINDOW_SECONDS, "key_id": key_id,
                                            "hash": digest(secret)})
            row = await cur.fetchone()
        if row is None:
            return None
        user_id, prefix, scopes, allowed, retry_after = row
        return Grant(key_id, UUID(str(user_id)), str(prefix), frozenset(scopes), bool(allowed),
                     int(retry_after))

    async def live(self, key_id: UUID) -> bool:
        """The key has not been revoked or deleted (not counted: a stream asks it as it goes)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM api_keys WHERE key_id = %s AND revoked_at IS NULL",
                                     (key_id,))
            return await cur.fetchone() is not None

