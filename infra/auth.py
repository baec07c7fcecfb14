"""JWT access tokens (PyJWT, HS256, 30 minutes) and where their secret comes from."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from uuid import UUID, uuid4

import jwt

from infra.settings import Settings

ALGORITHM = "HS256"
TOKEN_TTL_SECONDS = 30 * 60
MIN_SECRET_LENGTH = 32
# Values seen as defaults in the wild, refused even if long enough.
KNOWN_DEFAULTS = {"secret", "changeme", "change-me", "your-secret-key", "supersecretkey",
                  "please-change-me-to-a-long-random-secret"}


class TokenError(Exception):
    """A token that is missing, malformed, expired, tampered with or otherwise unusable."""


class ConfigurationError(SystemExit):
    """A setting that makes it unsafe to start; the process stops with its message."""


def jwt_secret(settings: Settings) -> str:
    """The signing secret: required outside the embedded mode, generated once inside it."""
    secret = settings.jwt_secret
    if secret:
        if secret.lower() in KNOWN_DEFAULTS or len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"JWT_SECRET is a default or shorter than {MIN_SECRET_LENGTH} characters; "
                "set it to a long random value (e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)"
            )
        return secret
    if settings.mode != "embedded":
        raise ConfigurationError(
            "JWT_SECRET is not set: it is required when CARPRICE_MODE is not 'embedded'"
        )
    return _embedded_secret(settings.home / "jwt_secret")


def _embedded_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: when two processes race, one writes and both read the same secret
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret


def issue_token(user_id: UUID, secret: str, now: float | None = None) -> str:
    """A signed access token for the user, valid for 30 minutes."""
    issued = int(now if now is not None else time.time())
    claims = {"sub": str(user_id), "iat": issued, "exp": issued + TOKEN_TTL_SECONDS,
              "jti": uuid4().hex}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# Tokens whose signature was checked: (secret, token) -> (user, expiry). A client sends the
# same token with every request for 30 minutes; checking its HMAC once is enough. The key is
# the whole token, signature included, so only a byte-identical token is ever taken from here;
# its expiry is still checked on every use.
_VERIFIED: dict[tuple[str, str], tuple[UUID, float]] = {}
_VERIFIED_MAX = 10_000


def read_token(token: str, secret: str) -> UUID:
    """The user id a valid token was issued to; TokenError otherwise."""
    return token_claims(token, secret)[0]


def token_claims(token: str, secret: str) -> tuple[UUID, float]:
    """(user id, expiry as Unix time) of a valid token; TokenError otherwise."""
    known = _VERIFIED.get((secret, token))
    if known is not None:
        if time.time() < known[1]:
            return known
        _VERIFIED.pop((secret, token), None)
        raise TokenError("token expired; sign in again")
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "sub", "jti"]})
        user = UUID(claims["sub"])
        expiry = float(claims["exp"])
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired; sign in again") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise TokenError("invalid token") from None
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()  # simple and bounded: the next requests verify their tokens again
    _VERIFIED[(secret, token)] = (user, expiry)
    return user, expiry
