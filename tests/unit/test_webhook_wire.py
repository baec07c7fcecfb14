"""Webhook signatures, the URLs a webhook may use, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from infra.webhook_http import (
    Poster,
    Targets,
    new_secret,
    sign,
    standard_headers,
    standard_key,
    url_problem,
    verify,
)
from infra.webhook_sender import Retry
from tests.receiver import Receiver

SECRET = "whsec_test"
BODY = b'{"id":"d1","type":"job.ended","data":{"status":"finished"}}'


def test_a_signature_is_hmac_sha256_of_the_timestamp_and_body_and_verifies() -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, BODY, now=1_700_000_010)


@pytest.mark.parametrize("secret", [new_secret(), "whsec_" + secrets.token_urlsafe(32)],
                         ids=["standard secret", "secret made before the standard headers"])
def test_the_standard_webhooks_headers_verify_with_the_standardwebhooks_library(secret: str) -> None:
    headers = standard_headers(secret, "d1", int(time.time()), BODY)
    # a receiver hands the library the secret it was given (an older, URL-safe one: its bytes)
    key: str | bytes = secret if standard_key(secret) != secret.encode() else secret.encode()
    assert Webhook(key).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(key).verify(BODY.replace(b"finished", b"failed"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


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


@pytest.mark.parametrize(("url", "allowed", "problem"), [
    ("https://hooks.example.com/carprice", "", None),
    ("http://127.0.0.1:9000/hook", "127.0.0.1:9000", None),
    ("http://127.0.0.1:9000/hook", "127.0.0.0/8", None),
    ("http://127.0.0.1:9001/hook", "127.0.0.1:9000", "private"),  # another port
    ("http://127.0.0.1:9000/hook", "", "private"),
    ("http://127.0.0.1:22/hook", "", "private"),
    ("http://10.1.2.3/hook", "", "private"),
    ("http://169.254.169.254/latest/meta-data", "", "private"),
    ("http://[::1]/hook", "", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "", "private"),
    ("http://[::ffff:a9fe:a9fe]/hook", "", "private"),  # 169.254.169.254, IPv4-mapped
    ("http://[64:ff9b::7f00:1]/hook", "", "private"),  # 127.0.0.1 through NAT64
    ("http://localhost/hook", "", "this machine"),
    ("http://localhost:8000/hook", "localhost:8000", None),
    ("ftp://example.com/hook", "", "http"),
    ("/relative/hook", "", "absolute"),
    ("https://user:pw@example.com/hook", "", "password"),
    ("https://example.com/" + "a" * 2000, "", "2000"),
    ("http://example.com:99999/hook", "", "port"),
])
def test_webhook_urls_refuse_private_targets_in_every_mode_unless_listed(
        url: str, allowed: str, problem: str | None) -> None:
    found = url_problem(url, Targets.parse(allowed))
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_a_name_that_resolves_to_a_private_address_is_not_posted_to() -> None:
    """2130706433 is 127.0.0.1 spelled as a number; a rebinding name answers a public address
    first and loopback second: any private address refuses the delivery."""
    receiver = Receiver()
    try:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        for name, addresses in (("2130706433", ["127.0.0.1"]),
                                ("rebind.example", ["93.184.216.34", "127.0.0.1"])):
            poster = Poster(timeout=2, resolver=lambda host, _p, a=addresses: a)
            outcome = poster.post(f"http://{name}:{port}/hook", b"{}", {})
            assert outcome.status is None and "private address" in (outcome.error or "")
    finally:
        receiver.close()
    assert receiver.requests == []


def test_a_post_connects_to_the_address_it_checked_and_resolves_once() -> None:
    receiver = Receiver()
    asked: list[str] = []

    def rebinding(host: str, _port: int) -> list[str]:  # first answer checked, then it changes
        asked.append(host)
        return ["127.0.0.1"] if len(asked) == 1 else ["203.0.113.9"]

    try:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        poster = Poster(timeout=2, allowed=Targets.parse(f"hooks.test:{port}"), resolver=rebinding)
        outcome = poster.post(f"http://hooks.test:{port}/hook?x=1", b'{"a":1}', {"Carprice-Event": "e"})
    finally:
        receiver.close()
    assert outcome.delivered and asked == ["hooks.test"]
    headers, body = receiver.requests[0]
    assert (headers["host"], headers["carprice-event"], body) == (f"hooks.test:{port}", "e", b'{"a":1}')


def test_no_redirect_is_followed_and_no_answer_body_is_kept() -> None:
    moved = Receiver(always=302, headers={"Location": "http://169.254.169.254/"})
    failing = Receiver(always=500, body=b"internal secret: db password is hunter2")
    try:
        allowed = Targets.parse("127.0.0.1")
        redirected = Poster(timeout=2, allowed=allowed).post(moved.url, b"{}", {})
        failed = Poster(timeout=2, allowed=allowed).post(failing.url, b"{}", {})
    finally:
        moved.close()
        failing.close()
    assert (redirected.status, redirected.error, len(moved.requests)) == (302, "HTTP 302 Found", 1)
    assert (failed.status, failed.error) == (500, "HTTP 500 Internal Server Error")


def test_retries_back_off_doubling_up_to_the_cap() -> None:
    retry = Retry(max_attempts=10, base=2.0, cap=60.0)
    delays = [retry.delay(n) for n in range(1, 9)]
    for n, d in enumerate(delays, 1):
        assert 0.8 * min(60.0, 2.0 * 2 ** (n - 1)) <= d <= 1.2 * min(60.0, 2.0 * 2 ** (n - 1))
    assert max(delays) <= 72.0
