"""Erased accounts, as every API process learns them: their tokens stop working at once here,
and within a second on other processes (looked up at most once a second, and only when a
request comes; an idle API asks nothing).

The feed is read by `erasures.seq`, which erasures take in commit order (infra/personal.py
locks the table for it): after seq n, nothing can still commit below n."""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID

import psycopg

from infra.pg import AsyncPool

log = logging.getLogger("carprice.api")
REFRESH_SECONDS = 1.0


class ErasedUsers:
    """The ids of erased accounts (none of them personal data)."""

    def __init__(self, pool: AsyncPool | None = None,
                 refresh: float = REFRESH_SECONDS) -> None:
        self.pool, self.refresh = pool, refresh
        self.known: set[UUID] = set()
        self._after = 0  # the last erasure seen (erasures.seq)
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
                cur = await conn.execute("SELECT seq, user_id FROM erasures WHERE seq > %s "
                                         "ORDER BY seq", (self._after,))
                rows = await cur.fetchall()
        except psycopg.Error as exc:  # the request's own query reports the outage
            log.warning("erased accounts: %s: %s", type(exc).__name__, exc)
            return
        for seq, user in rows:
            self.known.add(UUID(str(user)))
            self._after = int(seq)
        self._checked = time.monotonic()
