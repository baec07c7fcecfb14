"""Webhook signatures, the URLs a webhook may use, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from consumers.webhooks import Retry
from infra.webhook_http import sign, url_problem, verify

SECRET = "whsec_test"
BODY = b'{"id":"d1","type":"job.ended","data":{"status":"finished"}}'


def test_a_signature_is_hmac_sha256_of_the_timestamp_and_body_and_verifies() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, BODY, now=1_700_000_010)


@pytest.mark.parametrize("change", ["body", "secret", "timestamp", "garbage", "old"])
def test_a_tampered_stale_or_malformed_signature_does_not_verify(change: str) -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    body, secret, now = BODY, SECRET, 1_700_000_000
    if change == "body":
        body = BODY.replace(b"finished", b"failed")
    elif change == "secret":
        secret = "whsec_other"
    elif change == "timestamp":
        header = header.replace("t=1700000000", "t=1700000001")
    elif change == "garbage":
        header = "v1=deadbeef"
    else:
        now = 1_700_000_000 + 301  # replayed after the tolerance
    assert not verify(secret, header, body, now=now)


@pytest.mark.parametrize(("url", "private_ok", "problem"), [
    ("https://hooks.example.com/carprice", False, None),
    ("http://127.0.0.1:9000/hook", True, None),
    ("http://127.0.0.1:9000/hook", False, "private"),
    ("http://10.1.2.3/hook", False, "private"),
    ("http://[::1]/hook", False, "private"),
    ("http://localhost/hook", False, "this machine"),
    ("ftp://example.com/hook", True, "http"),
    ("/relative/hook", True, "absolute"),
    ("https://user:pw@example.com/hook", True, "password"),
    ("https://example.com/" + "a" * 2000, True, "2000"),
])
def test_webhook_urls(url: str, private_ok: bool, problem: str | None) -> None:
    found = url_problem(url, private_ok)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_retries_back_off_doubling_up_to_the_cap() -> None:
    retry = Retry(max_attempts=10, base=2.0, cap=60.0)
    delays = [retry.delay(n) for n in range(1, 9)]
    for n, d in enumerate(delays, 1):
        assert 0.8 * min(60.0, 2.0 * 2 ** (n - 1)) <= d <= 1.2 * min(60.0, 2.0 * 2 ** (n - 1))
    assert max(delays) <= 72.0
