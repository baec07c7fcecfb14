"""Webhooks on the wire: the signature, the URL rules and the HTTP POST of one delivery.

Each delivery is a JSON POST with these headers:

    Carprice-Event: job.ended
    Carprice-Delivery: <delivery id>        (the same on every retry: deduplicate by it)
    Carprice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

A receiver checks the signature with its user's secret and refuses a `t` far from its clock
(verify() does both), so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

SIGNATURE_HEADER = "Carprice-Signature"
MAX_URL = 2000


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Carprice-Signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0,
           now: float | None = None) -> bool:
    """True when `header` signs `body` with `secret` and was made within `tolerance` seconds."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why `url` cannot take deliveries (None when it can), judged from the text alone."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    if allow_private:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "must not point at this machine"
    try:
        if _private(host):
            return "must not point at a private, loopback or link-local address"
    except ValueError:
        pass  # a name: checked again, resolved, at each delivery
    return None


@dataclass
class Outcome:
    """What one POST did: a status (None when there was no answer) and why it failed."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """The receiver took it (any 2xx)."""
        return self.status is not None and 200 <= self.status < 300


class Poster:
    """POSTs deliveries over one pooled session (thread-safe for concurrent posts)."""

    def __init__(self, timeout: float = 5.0, allow_private: bool = False) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "carprice-webhooks/1"

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """Send one delivery; never raises."""
        if problem := url_problem(url, self.allow_private):
            return Outcome(None, f"url {problem}")
        if not self.allow_private and (problem := self._resolves_private(url)):
            return Outcome(None, problem)
        try:
            r = self.session.post(url, data=body, timeout=self.timeout, allow_redirects=False,
                                  headers={"Content-Type": "application/json", **headers})
        except requests.RequestException as exc:
            return Outcome(None, f"{type(exc).__name__}: {str(exc)[:300]}")
        return Outcome(r.status_code, None if 200 <= r.status_code < 300 else
                       f"HTTP {r.status_code}: {r.text[:200]}")

    @staticmethod
    def _resolves_private(url: str) -> str | None:
        host = urlsplit(url).hostname or ""
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError as exc:
            return f"cannot resolve {host}: {exc}"
        if any(_private(str(a)) for a in addresses):
            return f"{host} resolves to a private address: not delivered"
        return None

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()
