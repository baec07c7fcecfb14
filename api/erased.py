"""Erased accounts, as every API process learns them: their tokens stop working at once here,
and within a second on other processes (looked up at most once a second, and only when a
request comes; an idle API asks nothing)."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("carprice.api")
REFRESH_SECONDS = 1.0


class ErasedUsers:
    """The ids of erased accounts (none of them personal data)."""

    def __init__(self, pool: AsyncConnectionPool[Any] | None = None,
                 refresh: float = REFRESH_SECONDS) -> None:
        self.pool, self.refresh = pool, refresh
        self.known: set[UUID] = set()
        self._since: datetime | None = None
        self._checked = float("-inf")
        self._lock = asyncio.Lock()

    def add(self, user: UUID) -> None:
        """An account this process erased."""
        self.known.add(user)

    async def erased(self, user: UUID) -> bool:
        """True once `user` was erased (here, or elsewhere up to `refresh` seconds ago)."""
        if self.pool is not None and time.monotonic() - self._checked > self.refresh:
            async with self._lock:
                if time.monotonic() - self._checked > self.refresh:
                    await self._load()
        return user in self.known

    async def _load(self) -> None:
        if self.pool is None:
            return
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT user_id, erased_at FROM user_keys WHERE erased_at IS NOT NULL "
                    "AND erased_at >= coalesce(%s, '-infinity'::timestamptz) ORDER BY erased_at",
                    (self._since,))
                rows = await cur.fetchall()
        except psycopg.Error as exc:  # the request's own query reports the outage
            log.warning("erased accounts: %s: %s", type(exc).__name__, exc)
            return
        for user, erased_at in rows:
            self.known.add(UUID(str(user)))
            self._since = erased_at
        self._checked = time.monotonic()
