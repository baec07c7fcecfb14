"""Password hashing with argon2 (passlib). Plain passwords go no further than here."""

from __future__ import annotations

from functools import cache

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], deprecated="auto")


@cache
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so both failures take as long.
    # Computed on first use: an argon2 hash is real work, not something for import time.
    return str(_context.hash("carprice-timing-equaliser"))


def hash_password(password: str) -> str:
    """An argon2 hash of the password."""
    return str(_context.hash(password))


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; spends the same effort for an unknown user."""
    if password_hash is None:
        _context.verify(password, _dummy_hash())
        return False
    return bool(_context.verify(password, password_hash))
