"""What the API process builds once at start-up and hands to every request."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from commands.app import CarpriceApp
from infra.settings import Settings
from model_registry.store import Registry


class SignInLimiter:
    """Failed sign-ins allowed per key in `window` seconds: 5 per email, 50 per client."""

    def __init__(self, per_email: int = 5, per_client: int = 50, window: float = 60.0) -> None:
        self.per_email, self.per_client, self.window = per_email, per_client, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._failures.get(key)
                while q and now - q[0] > self.window:
                    q.popleft()
                limit = self.per_email if key.startswith("email:") else self.per_client
                if q and len(q) >= limit:
                    wait = max(wait, self.window - (now - q[0]))
        return int(wait) + 1 if wait else 0

    def failed(self, *keys: str) -> None:
        """Count a failed attempt."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > 100_000:  # bounded memory under a flood of emails
                self._failures.clear()


@dataclass
class Container:
    """The API's collaborators (the composition root fills it in the lifespan)."""

    settings: Settings
    commands: CarpriceApp
    registry: Registry
    reads: ConnectionPool[Any]
    jwt_secret: str
    kafka_bootstrap: str | None = None
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
