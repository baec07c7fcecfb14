"""Password hashing with argon2 (passlib). Plain passwords go no further than here."""

from __future__ import annotations

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified against when the email is unknown, so both failures take as long.
_DUMMY_HASH = _context.hash("carprice-timing-equaliser")


def hash_password(password: str) -> str:
    """An argon2 hash of the password."""
    return _context.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True when the password matches; spends the same effort for an unknown user."""
    if password_hash is None:
        _context.verify(password, _DUMMY_HASH)
        return False
    return bool(_context.verify(password, password_hash))
