"""Async reads with read-your-writes: wait, bounded, for a row to reflect the store's version.

Each query takes a pooled connection and gives it back at once; while a read waits for the
projector it holds no connection and no thread (see api/notifier.py). After the bound
(READ_WAIT_SECONDS, 1 s by default) the answer is the best row there is, with `stale: true`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from api.notifier import Notifier, wait
from commands.versions import aggregate_version


class Versioned(Protocol):
    """A read row that says which aggregate version it reflects."""

    @property
    def version(self) -> int: ...


T = TypeVar("T")
V = TypeVar("V", bound=Versioned)
Query = Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]


class Reads:
    """The read tables and the store's versions, for async routes."""

    def __init__(self, pool: AsyncConnectionPool[Any], events_table: str, notifier: Notifier,
                 wait_seconds: float = 1.0) -> None:
        self.pool = pool
        self.events_table = events_table
        self.notifier = notifier
        self.wait_seconds = wait_seconds

    async def run(self, query: Query[T]) -> T:
        """Run one query on a pooled connection, returned to the pool right after."""
        async with self.pool.connection() as conn:
            return await query(conn)

    async def version(self, aggregate_id: UUID) -> int:
        """The aggregate's current version in the event store (a primary-key lookup)."""
        return await self.run(lambda conn: aggregate_version(conn, self.events_table, aggregate_id))

    async def fresh(self, user: UUID, query: Query[V | None], target: int) -> tuple[V | None, bool]:
        """(row, stale): the first row at `target` or later, or after the wait the last one."""
        with self.notifier.subscribe(str(user)) as woken:
            row = await self.run(query)
            if target <= 0 or (row is not None and row.version >= target):
                return row, False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.wait_seconds
            while (left := deadline - loop.time()) > 0:
                if not await wait(woken, left):
                    break
                row = await self.run(query)
                if row is not None and row.version >= target:
                    return row, False
            return row, True

    async def until(self, user: UUID, query: Query[T], done: Callable[[T], bool],
                    seconds: float) -> T:
        """Run `query` again whenever the user's rows change, until `done` or `seconds` pass."""
        with self.notifier.subscribe(str(user)) as woken:
            value = await self.run(query)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while not done(value) and (left := deadline - loop.time()) > 0:
                if await wait(woken, left):
                    value = await self.run(query)
            return value
