"""JWT access tokens and the rules for their secret."""

from __future__ import annotations

import time
from pathlib import Path
from uuid import uuid4

import jwt
import pytest

from infra.auth import ConfigurationError, TokenError, issue_token, jwt_secret, read_token
from infra.settings import Settings

SECRET = "s" * 48


def test_token_round_trip_carries_the_user_and_expires_in_30_minutes() -> None:
    user = uuid4()
    token = issue_token(user, SECRET)
    assert read_token(token, SECRET) == user
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 30 * 60 and claims["jti"]


def test_a_token_already_accepted_is_refused_once_it_expires_and_its_forgeries_never_pass(
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = uuid4()
    token = issue_token(user, SECRET)
    assert read_token(token, SECRET) == user
    assert read_token(token, SECRET) == user  # the second time from the verified tokens
    head, body, sig = token.split(".")
    with pytest.raises(TokenError, match="invalid"):
        read_token(f"{head}.{body}.{sig[:-2]}xx", SECRET)
    with pytest.raises(TokenError, match="invalid"):
        read_token(token, "other" * 10)  # another secret: not the one it was verified with
    later = time.time() + 31 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenError, match="expired"):
        read_token(token, SECRET)


def test_expired_tampered_and_foreign_tokens_are_refused() -> None:
    user = uuid4()
    with pytest.raises(TokenError, match="expired"):
        read_token(issue_token(user, SECRET, now=time.time() - 31 * 60), SECRET)
    token = issue_token(user, SECRET)
    head, body, sig = token.split(".")
    with pytest.raises(TokenError):
        read_token(f"{head}.{body}.{sig[:-2]}xx", SECRET)
    with pytest.raises(TokenError):
        read_token(issue_token(user, "other" * 10), SECRET)
    with pytest.raises(TokenError):
        read_token("not-a-token", SECRET)


def test_alg_none_other_algorithms_and_missing_exp_are_refused() -> None:
    claims = {"sub": str(uuid4()), "iat": int(time.time()), "jti": "x"}
    unsigned = jwt.encode({**claims, "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(TokenError):
        read_token(unsigned, SECRET)
    hs512 = jwt.encode({**claims, "exp": int(time.time()) + 60}, SECRET, algorithm="HS512")
    with pytest.raises(TokenError):
        read_token(hs512, SECRET)
    no_exp = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        read_token(no_exp, SECRET)


def test_production_mode_requires_a_real_secret(tmp_path: Path) -> None:
    prod = {"CARPRICE_MODE": "production", "CARPRICE_HOME": str(tmp_path)}
    with pytest.raises(ConfigurationError, match="JWT_SECRET is not set"):
        jwt_secret(Settings(**prod, JWT_SECRET=None))  # type: ignore[arg-type]
    for weak in ("secret", "changeme", "short-but-not-default"):
        with pytest.raises(ConfigurationError, match="default or shorter"):
            jwt_secret(Settings(**prod, JWT_SECRET=weak))  # type: ignore[arg-type]
    assert jwt_secret(Settings(**prod, JWT_SECRET=SECRET)) == SECRET  # type: ignore[arg-type]


def test_embedded_mode_generates_one_secret_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(CARPRICE_MODE="embedded", CARPRICE_HOME=str(tmp_path), JWT_SECRET=None)  # type: ignore[arg-type]
    first = jwt_secret(settings)
    assert len(first) >= 32 and jwt_secret(settings) == first
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


# Made by passlib 1.7.4 (the last release of the original passlib) before the move to its
# maintained fork, libpass: accounts created then must still sign in.
PASSLIB_174_HASH = ("$argon2id$v=19$m=65536,t=3,p=4$gLA2RihFiFGK0bo3xtib8w$"
                    "+cIObBQtGvKGCmVvOWj1MyKJklycqlI5Zr07OXdG1ic")


def test_a_hash_made_by_the_original_passlib_still_verifies_without_deprecation_warnings() -> None:
    import warnings

    from commands.passwords import hash_password, verify_password

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # argon2-cffi's removals break sign-in
        assert verify_password("correct horse battery", PASSLIB_174_HASH)
        assert not verify_password("correct horse battery!", PASSLIB_174_HASH)
        fresh = hash_password("correct horse battery")
    assert fresh.startswith("$argon2id$") and fresh != PASSLIB_174_HASH
    assert verify_password("correct horse battery", fresh)
