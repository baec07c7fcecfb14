"""API keys: issue (the secret is returned once), list and revoke; erasure deletes them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from commands.write_side import WriteSide
from domain.api_key import PREFIX, SCOPES, ApiKey
from domain.errors import ApiKeyNotFound, InvalidApiKey
from domain.text import text_problem
from infra.api_keys import KeyRow, digest

MAX_KEYS = 50  # live keys per account
MAX_RATE = 100_000  # requests per minute a key may be given


@dataclass(frozen=True)
class IssuedKey:
    """A new key, with its secret: the only time anyone sees it."""

    row: KeyRow
    secret: str


class Keys(WriteSide):
    """The API-key commands of CarpriceApp."""

    def issue_key(self, user_id: UUID, name: str, scopes: list[str],
                  rate_limit_per_minute: int) -> IssuedKey:
        """Issue a key: `key.issued.v1`, and its lookup row (the secret's hash)."""
        problem = text_problem(name) if isinstance(name, str) else "must be a text"
        if problem or not 1 <= len(name.strip()) <= 100:
            raise InvalidApiKey(f"name {problem or 'must be 1 to 100 characters'}")
        unknown = sorted(set(scopes) - set(SCOPES))
        if not scopes or unknown:
            raise InvalidApiKey(f"scopes must be some of {', '.join(SCOPES)}"
                                + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
        if not 1 <= rate_limit_per_minute <= MAX_RATE:
            raise InvalidApiKey(f"rate_limit_per_minute must be 1 to {MAX_RATE}")
        if sum(r.revoked_at is None for r in self.api_keys.of_user(user_id)) >= MAX_KEYS:
            raise InvalidApiKey(f"an account has at most {MAX_KEYS} live keys: revoke one first")
        key_id = uuid4()
        secret = f"{PREFIX}{key_id.hex}_{secrets.token_urlsafe(32)}"
        row = KeyRow(key_id, user_id, name.strip(), secret[:12], tuple(s for s in SCOPES if s in scopes),
                     rate_limit_per_minute, datetime.now(UTC))
        # the row first: it works only once its secret is returned, which needs the event saved
        self.api_keys.add(row, digest(secret))
        try:
            key = ApiKey._create(ApiKey.Issued, id=key_id, user_id=user_id,  # type: ignore[attr-defined]
                                 name=row.name, scopes=list(row.scopes), prefix=row.prefix,
                                 rate_limit_per_minute=rate_limit_per_minute)
            self.save(key)
        except BaseException:
            self.api_keys.remove(key_id)
            raise
        return IssuedKey(row, secret)

    def list_keys(self, user_id: UUID) -> list[KeyRow]:
        """The user's keys, oldest first (revoked ones too, marked)."""
        return self.api_keys.of_user(user_id)

    def revoke_key(self, user_id: UUID, key_id: UUID, why: str = "revoked by its owner") -> bool:
        """Revoke one of the user's keys: it stops working at once, everywhere. False: it was
        revoked before."""
        try:
            key: object = self.repository.get(key_id)
        except AggregateNotFoundError:
            raise ApiKeyNotFound(key_id) from None
        if not isinstance(key, ApiKey) or key.user_id != user_id:
            raise ApiKeyNotFound(key_id)
        self.api_keys.revoke(key_id)  # first: the key stops even if the event's save fails
        if not key.revoke(why):
            return False
        self.save(key)
        return True
