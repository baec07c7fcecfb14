"""The read side as the API's routes ask for it, with read-your-writes.

A read that follows the caller's own write waits, bounded (READ_WAIT_SECONDS, 1 s by
default), for the read table to reflect the store's version of the aggregate; then it
answers the best row there is, with `stale: true`. Each query takes a pooled connection and
gives it back at once: while a read waits for the projector it holds no connection and no
thread (api/notifier.py wakes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow

from api.notifier import Notifier, wait
from commands.versions import aggregate_version
from domain.ids import wallet_id_for
from infra.pg import AsyncPool
from projections import queries


class Versioned(Protocol):
    """A read row that says which aggregate version it reflects."""

    @property
    def version(self) -> int: ...


T = TypeVar("T")
V = TypeVar("V", bound=Versioned)
Query = Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[T]]


class Permit(Protocol):
    """Whether a waiting caller may still be answered (api.deps.Caller)."""

    def seconds_left(self) -> float: ...
    async def still_allowed(self) -> bool: ...


class PermitEnded(Exception):
    """The caller's token expired, or its account was erased, while it waited."""


async def _check(permit: Permit | None) -> None:
    if permit is not None and not await permit.still_allowed():
        raise PermitEnded()


def _bounded(permit: Permit | None, seconds: float) -> float:
    """A wait no longer than what is left of the caller's token."""
    return seconds if permit is None else min(seconds, permit.seconds_left())


class ReadSide(Protocol):
    """What the routes read (the fakes of the route tests implement it too)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def balance(self, user: UUID) -> tuple[queries.BalanceRow | None, bool]: ...
    async def job(self, user: UUID, job_id: UUID, wait: bool = False) -> queries.JobRow | None: ...
    async def history(self, user: UUID, limit: int, before: tuple[datetime, UUID] | None,
                      ) -> tuple[list[queries.JobRow], list[UUID], bool]: ...
    async def running(self, user: UUID) -> tuple[list[queries.RunningRow], bool]: ...
    async def batch(self, user: UUID, batch_id: UUID, until_projected: bool = False
                    ) -> queries.BatchRow | None: ...
    async def batches(self, user: UUID) -> list[queries.BatchRow]: ...
    async def batch_rows(self, user: UUID, batch_id: UUID) -> list[queries.BatchResultRow]: ...
    async def live(self, model_name: str) -> list[queries.LiveRow]: ...
    async def challengers(self, model_name: str) -> list[queries.ShadowRow]: ...
    async def job_until_ended(self, user: UUID, job_id: UUID, seconds: float,
                              first_show: bool = False, permit: Permit | None = None,
                              ) -> queries.JobRow | None: ...
    def job_updates(self, user: UUID, after: int | None, permit: Permit | None = None,
                    ) -> AsyncIterator[list[queries.JobUpdateRow]]: ...


ENDED = ("finished", "failed")
LOOK_SECONDS, PERMIT_SECONDS = 30, 5


class Reads:
    """The read tables and the store's versions, on an async pool."""

    def __init__(self, pool: AsyncPool, events_table: str, notifier: Notifier,
                 wait_seconds: float = 1.0) -> None:
        self.pool = pool
        self.events_table = events_table
        self.notifier = notifier
        self.wait_seconds = wait_seconds

    async def start(self) -> None:
        """Open the pool and start listening (in the event loop, at the API's start)."""
        await self.pool.open()
        await self.notifier.start()

    async def stop(self) -> None:
        """Stop listening and close the pool."""
        await self.notifier.stop()
        await self.pool.close()

    async def balance(self, user: UUID) -> tuple[queries.BalanceRow | None, bool]:
        """(row, stale): the user's balance once it reflects their wallet's current version."""
        target = await self._version(wallet_id_for(user))
        return await self._fresh(user, lambda conn: queries.balance(conn, user), target)

    async def job(self, user: UUID, job_id: UUID, wait: bool = False) -> queries.JobRow | None:
        """One of the user's jobs; with `wait`, for up to the bound until it is projected."""
        if not wait:
            return await self._run(lambda conn: queries.job(conn, user, job_id))
        row, _ = await self._fresh(user, lambda conn: queries.job(conn, user, job_id), 1)
        return row

    async def history(self, user: UUID, limit: int, before: tuple[datetime, UUID] | None,
                      ) -> tuple[list[queries.JobRow], list[UUID], bool]:
        """(a page of jobs, every job id, stale), once every job the user submitted shows."""
        fresh = await self._caught_up(user)
        rows = await self._run(lambda conn: queries.history(conn, user, limit, before))
        ids = await self._run(lambda conn: queries.job_ids(conn, user))
        return rows, ids, not fresh

    async def batch(self, user: UUID, batch_id: UUID, until_projected: bool = False
                    ) -> queries.BatchRow | None:
        """One of the user's batches; `until_projected`: wait for up to the bound until it
        shows (right after submitting it)."""
        row = await self._run(lambda conn: queries.batch(conn, user, batch_id))
        if row is not None or not until_projected:
            return row
        with self.notifier.subscribe(str(user)) as woken:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.wait_seconds
            while row is None and (left := deadline - loop.time()) > 0:
                await wait(woken, left)
                row = await self._run(lambda conn: queries.batch(conn, user, batch_id))
        return row

    async def batches(self, user: UUID) -> list[queries.BatchRow]:
        """The user's batches, newest first."""
        return await self._run(lambda conn: queries.batches(conn, user))

    async def batch_rows(self, user: UUID, batch_id: UUID) -> list[queries.BatchResultRow]:
        """Every row of a batch, in input order."""
        return await self._run(lambda conn: queries.batch_rows(conn, user, batch_id))

    async def live(self, model_name: str) -> list[queries.LiveRow]:
        """A model's live errors per version, from the sale prices reported."""
        return await self._run(lambda conn: queries.live(conn, model_name))

    async def challengers(self, model_name: str) -> list[queries.ShadowRow]:
        """A model's challengers against its champions on the jobs they priced in the shadow."""
        return await self._run(lambda conn: queries.challengers(conn, model_name))

    async def running(self, user: UUID) -> tuple[list[queries.RunningRow], bool]:
        """(the user's unfinished jobs, stale)."""
        fresh = await self._caught_up(user)
        return await self._run(lambda conn: queries.running(conn, user)), not fresh

    async def job_until_ended(self, user: UUID, job_id: UUID, seconds: float,
                              first_show: bool = False, permit: Permit | None = None,
                              ) -> queries.JobRow | None:
        """One of the user's jobs once it has ended, or as it is after `seconds` (long-poll).

        Woken by the projector's NOTIFY for this user: one subscription for the whole wait,
        one query per change of their rows, none in between. With `first_show`, a job without
        a row is not waited for: None at once, and the caller asks the write side whose it is
        (an id that is not the caller's must not take longer to refuse than an unknown one).
        The `permit` is checked at every wake-up (PermitEnded when it no longer holds), and no
        wait outlasts it."""
        def ended(row: queries.JobRow | None) -> bool:
            return row is not None and row.status in ENDED

        with self.notifier.subscribe(str(user)) as woken:  # before the read: no wake-up is missed
            row = await self._run(lambda conn: queries.job(conn, user, job_id))
            if row is None and first_show:
                return None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while not ended(row) and (left := _bounded(permit, deadline - loop.time())) > 0:
                woke = await wait(woken, left)
                await _check(permit)
                if woke:
                    row = await self._run(lambda conn: queries.job(conn, user, job_id))
            await _check(permit)
            return row

    async def job_updates(self, user: UUID, after: int | None, permit: Permit | None = None,
                          ) -> AsyncIterator[list[queries.JobUpdateRow]]:
        """The user's job updates after position `after` (None: from now on), in batches, as
        they are projected; endless (the caller stops iterating when its client leaves), or
        until the `permit` no longer holds: it is checked before every batch, and every wait
        ends by its expiry (PermitEnded)."""
        with self.notifier.subscribe(str(user)) as woken:
            if after is None:
                after = await self._run(lambda conn: queries.last_job_update(conn, user))
            while True:
                await _check(permit)
                rows = await self._updates_after(user, after)
                if rows:
                    after = rows[-1].position
                    yield rows
                    continue  # there may be more than a page
                # a look every 30 s, should a NOTIFY be lost; the permit every 5 s meanwhile (an
                # idle user's stream gets no wake-up of its own after an erasure; the check
                # reads the process's shared erased-accounts feed, at most once a second)
                for _ in range(LOOK_SECONDS // PERMIT_SECONDS):
                    if await wait(woken, _bounded(permit, PERMIT_SECONDS)):
                        break
                    await _check(permit)

    async def _updates_after(self, user: UUID, after: int) -> list[queries.JobUpdateRow]:
        return await self._run(lambda conn: queries.job_updates(conn, user, after))

    async def _caught_up(self, user: UUID) -> bool:
        # Jobs are charged to the wallet in the same transaction, and the projector applies
        # the user's events in order: a balance row at the wallet's version means every job the
        # user submitted so far is in the read tables too.
        _, stale = await self.balance(user)
        return not stale

    async def _run(self, query: Query[T]) -> T:
        async with self.pool.connection() as conn:
            return await query(conn)

    async def _version(self, aggregate_id: UUID) -> int:
        return await self._run(lambda conn: aggregate_version(conn, self.events_table, aggregate_id))

    async def _fresh(self, user: UUID, query: Query[V | None], target: int) -> tuple[V | None, bool]:
        with self.notifier.subscribe(str(user)) as woken:  # before the read: no wake-up is missed
            row = await self._run(query)
            if target <= 0 or (row is not None and row.version >= target):
                return row, False
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.wait_seconds
            while (left := deadline - loop.time()) > 0:
                if not await wait(woken, left):
                    break
                row = await self._run(query)
                if row is not None and row.version >= target:
                    return row, False
            return row, True
