"""Personal data kept out of the events' clear text: each user's key, and the email index.

A user's name, email and password hash are sealed with a key of their own (AES-256-GCM, the
user id as associated data) before they go into `user.registered.v1`. Erasing the account
deletes the key: what is left in the store is ciphertext that nothing can open
("crypto-shredding"). The email index maps the sha256 of an email to its account, so that one
email has one account; its row goes with the erasure, and the email can register again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.ids import normalise_email

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresDatastore

SEALED_PREFIX = "aesgcm1:"


class Unsealable(ValueError):
    """Sealed data that this key does not open (another user's, or altered)."""


def seal(key: bytes, user_id: UUID, data: dict[str, str]) -> str:
    """`data` as JSON, encrypted and authenticated with the user's key."""
    nonce = os.urandom(12)
    box = AESGCM(key).encrypt(nonce, json.dumps(data).encode(), user_id.bytes)
    return SEALED_PREFIX + base64.b64encode(nonce + box).decode()


def unseal(key: bytes, user_id: UUID, sealed: str) -> dict[str, str]:
    """What `seal` sealed; Unsealable when the key or the user is not the one it was sealed for."""
    if not sealed.startswith(SEALED_PREFIX):
        raise Unsealable("not sealed data")
    raw = base64.b64decode(sealed[len(SEALED_PREFIX):])
    try:
        found: dict[str, str] = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], user_id.bytes))
    except InvalidTag:
        raise Unsealable("the key does not open it") from None
    return found


def email_digest(email: str) -> bytes:
    """The index's key of an email (trimmed, case-insensitive)."""
    return hashlib.sha256(normalise_email(email).encode()).digest()


class PersonalData(Protocol):
    """Where keys and the email index live."""

    def new_key(self, user_id: UUID) -> bytes:
        """A new key for a new user (kept until the user is erased)."""
        ...

    def key(self, user_id: UUID) -> bytes | None:
        """The user's key; None once erased (or never made)."""
        ...

    def claim(self, digest: bytes, user_id: UUID, stale_owner: UUID | None = None) -> UUID:
        """Claim an email for `user_id` (taking it over from `stale_owner`, a sign-up that never
        saved); the owner it has afterwards."""
        ...

    def owner(self, digest: bytes) -> tuple[UUID, datetime] | None:
        """The account an email belongs to, and since when."""
        ...

    def unclaim(self, digest: bytes, user_id: UUID) -> None:
        """Give back a claim whose sign-up failed, and drop its key."""
        ...

    def shred(self, user_id: UUID) -> None:
        """Erase: delete the user's key and their email's index row (idempotent)."""
        ...


class MemoryPersonalData:
    """In memory, beside the in-memory event store (tests)."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes | None] = {}
        self.index: dict[bytes, tuple[UUID, datetime]] = {}
        self._lock = threading.Lock()

    def new_key(self, user_id: UUID) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        self.keys[user_id] = key
        return key

    def key(self, user_id: UUID) -> bytes | None:
        return self.keys.get(user_id)

    def claim(self, digest: bytes, user_id: UUID, stale_owner: UUID | None = None) -> UUID:
        with self._lock:
            now = self.index.get(digest)
            if now is None or (stale_owner is not None and now[0] == stale_owner):
                self.index[digest] = (user_id, datetime.now(UTC))
            return self.index[digest][0]

    def owner(self, digest: bytes) -> tuple[UUID, datetime] | None:
        return self.index.get(digest)

    def unclaim(self, digest: bytes, user_id: UUID) -> None:
        with self._lock:
            if self.index.get(digest, (None,))[0] == user_id:
                del self.index[digest]
            self.keys.pop(user_id, None)

    def shred(self, user_id: UUID) -> None:
        with self._lock:
            self.keys[user_id] = None
            for digest in [d for d, (u, _) in self.index.items() if u == user_id]:
                del self.index[digest]


class PostgresPersonalData:
    """In the `user_keys` and `email_index` tables, on the event store's connections."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def new_key(self, user_id: UUID) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("INSERT INTO user_keys (user_id, key) VALUES (%s, %s)", (user_id, key))
        return key

    def key(self, user_id: UUID) -> bytes | None:
        with self.datastore.transaction() as cur:
            row = cur.execute("SELECT key FROM user_keys WHERE user_id = %s", (user_id,)).fetchone()
        return bytes(row["key"]) if row and row["key"] is not None else None

    def claim(self, digest: bytes, user_id: UUID, stale_owner: UUID | None = None) -> UUID:
        with self.datastore.transaction(commit=True) as cur:
            if stale_owner is not None:
                cur.execute("UPDATE email_index SET user_id = %s, claimed_at = now() WHERE digest = %s "
                            "AND user_id = %s", (user_id, digest, stale_owner))
            cur.execute("INSERT INTO email_index (digest, user_id) VALUES (%s, %s) "
                        "ON CONFLICT (digest) DO NOTHING", (digest, user_id))
            row = cur.execute("SELECT user_id FROM email_index WHERE digest = %s", (digest,)).fetchone()
        if row is None:  # inserted just above, or there before: never
            raise LookupError("the e-mail index row vanished within its transaction")
        return UUID(str(row["user_id"]))

    def owner(self, digest: bytes) -> tuple[UUID, datetime] | None:
        with self.datastore.transaction() as cur:
            row = cur.execute("SELECT user_id, claimed_at FROM email_index WHERE digest = %s",
                              (digest,)).fetchone()
        return (UUID(str(row["user_id"])), row["claimed_at"]) if row else None

    def unclaim(self, digest: bytes, user_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("DELETE FROM email_index WHERE digest = %s AND user_id = %s", (digest, user_id))
            cur.execute("DELETE FROM user_keys WHERE user_id = %s", (user_id,))

    def shred(self, user_id: UUID) -> None:
        with self.datastore.transaction(commit=True) as cur:
            cur.execute("UPDATE user_keys SET key = NULL, erased_at = now() WHERE user_id = %s "
                        "AND key IS NOT NULL", (user_id,))
            cur.execute("INSERT INTO user_keys (user_id, key, erased_at) VALUES (%s, NULL, now()) "
                        "ON CONFLICT (user_id) DO NOTHING", (user_id,))  # an account from before keys
            cur.execute("DELETE FROM email_index WHERE user_id = %s", (user_id,))
            # the feed the API processes follow (infra/erased.py): the lock, held to the commit,
            # makes each erasure's seq later than every erasure committed before it
            cur.execute("LOCK TABLE erasures IN SHARE ROW EXCLUSIVE MODE")
            cur.execute("INSERT INTO erasures (user_id) VALUES (%s) ON CONFLICT (user_id) DO NOTHING",
                        (user_id,))


def personal_data_for(recorder: object) -> PersonalData:
    """The personal-data store beside an event store's recorder."""
    datastore = getattr(recorder, "datastore", None)
    if datastore is not None and hasattr(datastore, "transaction"):
        return PostgresPersonalData(datastore)
    return MemoryPersonalData()
