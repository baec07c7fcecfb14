"""Log lines: JSON in production with the ids an operator searches by, never a token."""

from __future__ import annotations

import json
import logging

import jwt
import pytest

from infra import logs
from infra.settings import Settings


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def configure(fmt: str) -> logging.Logger:
        logs.setup("worker", Settings(LOG_FORMAT=fmt))  # type: ignore[call-arg]
        return logging.getLogger("carprice.test")

    yield configure, lambda: capsys.readouterr().err.splitlines()
    logging.getLogger().handlers.clear()


def test_json_lines_carry_bound_and_explicit_ids(lines) -> None:  # type: ignore[no-untyped-def]
    configure, read = lines
    log = configure("json")
    with logs.context(request_id="r-1", user_id="u-1"):
        log.info("charged %d credits", 10, extra={"job_id": "j-1"})
    log.info("outside")
    first, second = (json.loads(x) for x in read())
    assert first["msg"] == "charged 10 credits" and first["level"] == "INFO"
    assert (first["request_id"], first["user_id"], first["job_id"]) == ("r-1", "u-1", "j-1")
    assert first["process"] == "worker" and first["ts"].endswith("+00:00")
    assert "request_id" not in second  # the context ends with its block


def test_a_token_is_scrubbed_from_messages_and_tracebacks(lines) -> None:  # type: ignore[no-untyped-def]
    configure, read = lines
    log = configure("json")
    token = jwt.encode({"sub": "someone"}, "k" * 32, algorithm="HS256")
    try:
        raise ValueError(f"bad header Bearer {token}")
    except ValueError:
        log.exception("request failed with %s", token)
    (line,) = read()
    assert token not in line and "[token]" in json.loads(line)["msg"]


def test_an_api_key_is_scrubbed_too(lines) -> None:  # type: ignore[no-untyped-def]
    configure, read = lines
    log = configure("json")
    key = "cpk_" + "0123456789abcdef" * 2 + "_" + "Zx-_9" * 9
    log.warning("refused Authorization: Bearer %s", key)
    (line,) = read()
    assert key[20:] not in line and json.loads(line)["msg"] == "refused Authorization: Bearer [token]"


def test_console_lines_are_readable_with_ids_at_the_end(lines) -> None:  # type: ignore[no-untyped-def]
    configure, read = lines
    log = configure("console")
    log.info("job done", extra={"job_id": "j-9", "trace_id": "t" * 32})
    (line,) = read()
    assert " INFO worker[" in line and line.endswith(f"job done job_id=j-9 trace_id={'t' * 32}")


def test_json_is_the_default_outside_the_embedded_mode(lines, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    configure, read = lines
    monkeypatch.setenv("CARPRICE_MODE", "production")
    configure("")
    logging.getLogger("x").warning("hello")
    assert json.loads(read()[0])["msg"] == "hello"
