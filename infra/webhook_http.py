"""Webhooks on the wire: the signature, the URL rules and the HTTP POST of one delivery.

Each delivery is a JSON POST with these headers:

    Carprice-Event: job.ended
    Carprice-Delivery: <delivery id>        (the same on every retry: deduplicate by it)
    Carprice-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    webhook-id: <delivery id>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

A receiver checks the signature with its user's secret and refuses a `t` far from its clock
(verify() does both), so a captured request cannot be replayed later. The three `webhook-*`
headers follow Standard Webhooks (standardwebhooks.com): any of its libraries verifies them
with the user's secret as given, `Webhook("whsec_...").verify(body, headers)`. Its key is the
secret after `whsec_`, base64-decoded; a secret made before these headers (URL-safe base64,
which that decoding may refuse) signs with its own bytes as the key: pass
`secret.encode()` to the library then.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import SplitResult, urlsplit

import urllib3

SIGNATURE_HEADER = "Carprice-Signature"
MAX_URL = 2000
USER_AGENT = "carprice-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Carprice-Signature header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks key of a `whsec_` secret, decoded as its libraries decode it (a
    secret they cannot decode: its own bytes)."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==")
    except binascii.Error:
        return secret.encode()
    return key or secret.encode()


def standard_headers(secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of a delivery."""
    mac = hmac.new(standard_key(secret), f"{delivery_id}.{timestamp}.".encode() + body,
                   hashlib.sha256).digest()
    return {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def new_secret() -> str:
    """A user's signing secret: `whsec_` and 32 random bytes in base64, the Standard Webhooks
    form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


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


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _private(address: str) -> bool:
    """Loopback, private, link-local, reserved or multicast, also behind an IPv4-mapped,
    6to4-free NAT64 or plain IPv6 spelling."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return not ip.is_global or ip.is_multicast


@dataclass(frozen=True)
class Targets:
    """The private targets an operator allows explicitly (WEBHOOK_ALLOWED_TARGETS): entries
    `HOST`, `HOST:PORT`, `CIDR` or `[IPv6]:PORT`; HOST an address or a name. Nothing else
    private, loopback or link-local is ever delivered to, in any mode."""

    entries: tuple[tuple[str, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Targets:
        """Targets from a comma-separated list (empty: none)."""
        out: list[tuple[str, int | None]] = []
        for raw in (t.strip() for t in text.split(",")):
            if not raw:
                continue
            host, port = raw, None
            if raw.startswith("["):
                host, _, rest = raw[1:].partition("]")
                port = int(rest[1:]) if rest.startswith(":") else None
            elif raw.count(":") == 1:
                host, _, number = raw.partition(":")
                port = int(number)
            out.append((host.lower(), port))
        return cls(tuple(out))

    def allow(self, host: str, port: int, address: str | None = None) -> bool:
        """Whether host:port (connecting to `address`) is listed."""
        for entry, wanted in self.entries:
            if wanted is not None and wanted != port:
                continue
            if entry == host.lower():
                return True
            if address is not None:
                try:
                    if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def url_problem(url: str, allowed: Targets | None = None) -> str | None:
    """Why `url` cannot take deliveries (None when it can), judged from the text alone."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        port = _port(parts)
    except ValueError:
        return "must be an absolute http:// or https:// URL with a valid port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    host = parts.hostname
    if (allowed or Targets()).allow(host, port, _literal(host)):
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "must not point at this machine"
    literal = _literal(host)
    if literal is not None and _private(literal):
        return "must not point at a private, loopback or link-local address"
    return None  # a name: resolved and checked at each delivery, then connected to as checked


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@dataclass
class Outcome:
    """What one POST did: a status (None when there was no answer) and why it failed.

    The reason is ours (the status's standard phrase, or what kind of failure), never the
    receiver's words: what an address answers must not be readable through the delivery log."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """The receiver took it (any 2xx)."""
        return self.status is not None and 200 <= self.status < 300


def _status_reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _failure(exc: Exception) -> str:
    kinds = ((urllib3.exceptions.ConnectTimeoutError, "connection timed out"),
             (urllib3.exceptions.ReadTimeoutError, "no answer in time"),
             (urllib3.exceptions.NewConnectionError, "connection failed"),
             (urllib3.exceptions.SSLError, "TLS handshake failed"),
             (urllib3.exceptions.ProtocolError, "connection broken"))
    return next((text for kind, text in kinds if isinstance(exc, kind)), type(exc).__name__)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the resolver's order."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class Poster:
    """POSTs deliveries: resolves the host once, checks every address, then connects to the
    checked one (the name is never resolved again: a DNS answer that changes between check and
    connect cannot redirect the POST) and follows no redirect."""

    def __init__(self, timeout: float = 5.0, allowed: Targets | None = None,
                 resolver: Resolver = resolve) -> None:
        self.timeout = timeout
        self.allowed = allowed or Targets()
        self.resolver = resolver

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """Send one delivery; never raises."""
        if problem := url_problem(url, self.allowed):
            return Outcome(None, f"url {problem}")
        parts = urlsplit(url)
        host, port = parts.hostname or "", _port(parts)
        try:
            addresses = [_literal(host)] if _literal(host) else self.resolver(host, port)
        except OSError:
            return Outcome(None, f"cannot resolve {host}")
        checked = [a for a in addresses if a is not None]
        if not checked:
            return Outcome(None, f"cannot resolve {host}")
        for address in checked:
            if _private(address) and not self.allowed.allow(host, port, address):
                return Outcome(None, f"{host} resolves to a private address: not delivered")
        return self._send(parts, checked[0], port, body, headers)

    def _send(self, parts: SplitResult, address: str, port: int, body: bytes,
              headers: dict[str, str]) -> Outcome:
        host = parts.hostname or ""
        kwargs: dict[str, Any] = {"timeout": urllib3.Timeout(total=self.timeout), "retries": False,
                                  "maxsize": 1, "block": False}
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(address, port, server_hostname=host,
                                               assert_hostname=host, cert_reqs="CERT_REQUIRED",
                                               **kwargs)
        else:
            pool = urllib3.HTTPConnectionPool(address, port, **kwargs)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = host if ":" not in host else f"[{host}]"
        try:
            response = pool.urlopen(
                "POST", path, body=body, redirect=False, preload_content=False,
                headers={"Host": netloc if parts.port is None else f"{netloc}:{parts.port}",
                         "User-Agent": USER_AGENT, "Content-Type": "application/json", **headers})
            status = response.status
            response.close()  # the body is never read: nothing of it is kept
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(None, _failure(exc))
        finally:
            pool.close()
        return Outcome(status, None if 200 <= status < 300 else _status_reason(status))

    def close(self) -> None:
        """Nothing is kept open between deliveries."""
