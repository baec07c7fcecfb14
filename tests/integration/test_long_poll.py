"""Reads.job_until_ended on real PostgreSQL: woken by the projector's NOTIFY, bounded by `wait`."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from api.notifier import Notifier
from api.reads import Reads
from projections.state import CHANNEL

pytestmark = pytest.mark.postgres


class CountingReads(Reads):
    """Reads that count the queries they have answered. A reader that has just been answered
    runs on to its next wait without yielding, so once the count reaches n it is waiting."""

    queries = 0

    async def _run(self, query: Any) -> Any:
        answer = await super()._run(query)
        self.queries += 1
        return answer

    async def answered(self, n: int, timeout: float = 10) -> None:
        """Return once `n` queries were answered (no fixed sleep: the condition itself)."""
        async with asyncio.timeout(timeout):
            while self.queries < n:
                await asyncio.sleep(0.005)


def test_a_long_poll_is_answered_when_the_job_ends_and_otherwise_after_its_wait(read_db: str) -> None:
    user, job = uuid4(), uuid4()
    with psycopg.connect(read_db, autocommit=True) as conn:
        conn.execute("INSERT INTO prediction_history (job_id, user_id, model_name, model_version, price, "
                     "status, features, created_at, version) VALUES (%s, %s, 'm', '1', 10, 'queued', %s, "
                     "now(), 1)", (job, user, json.dumps({})))

    async def scenario() -> tuple[str, str, str]:
        reads = CountingReads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False),
                              "unused", Notifier(read_db, CHANNEL))
        await reads.start()
        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            waited = await reads.job_until_ended(user, job, 0.3)  # nothing happens: its status then
            pending = asyncio.create_task(reads.job_until_ended(user, job, 25))
            await reads.answered(2)  # its first read: it waits now
            async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
                await conn.execute("UPDATE prediction_history SET status = 'started' WHERE job_id = %s",
                                   (job,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(uuid4())))  # someone else
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))  # not ended yet
                await reads.answered(3)  # woken once, read the row again: waits on
                still = "waiting" if not pending.done() else "answered"
                await conn.execute("UPDATE prediction_history SET status = 'finished', result = 1.0 "
                                   "WHERE job_id = %s", (job,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
            ended = await asyncio.wait_for(pending, 10)  # well before its 25 s
            assert waited is not None and ended is not None
            return waited.status, still, ended.status
        finally:
            await reads.stop()

    assert asyncio.run(scenario()) == ("queued", "waiting", "finished")


class OwnerStore:
    """The write side, asked once whose job a row-less id is: this one is `owner`'s."""

    def __init__(self, owner: Any) -> None:
        self.owner, self.asked = owner, 0

    def job(self, job_id: Any, user: Any = None) -> Any:
        from domain.errors import JobNotFound

        self.asked += 1
        if user != self.owner:
            raise JobNotFound(str(job_id))
        return object()


def test_a_long_poll_right_after_the_post_makes_one_query_per_change_of_the_users_rows(
        read_db: str) -> None:
    """The usual long-poll: the GET arrives before the projector has written the job's row.
    It reads the row (none), asks the store whose job it is, then reads the row again, once
    when it shows and once when the job ends: 4 queries of the read side, 1 of the store."""
    from api.routes.predict import read_job

    user, job = uuid4(), uuid4()
    store = OwnerStore(user)

    async def scenario() -> tuple[str, int]:
        reads = CountingReads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False),
                              "stored_events", Notifier(read_db, CHANNEL))
        await reads.start()
        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            pending = asyncio.create_task(read_job(reads, cast(Any, store), user, job, 25))
            await reads.answered(2)  # no row, the store asked, the row read again: it waits
            async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
                await conn.execute(
                    "INSERT INTO prediction_history (job_id, user_id, model_name, model_version, "
                    "price, status, features, created_at, version) VALUES (%s, %s, 'm', '1', 10, "
                    "'queued', %s, now(), 1)", (job, user, json.dumps({})))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
                await reads.answered(3)  # the row shows, queued: it waits for the end
                await conn.execute("UPDATE prediction_history SET status = 'finished', result = 1.0 "
                                   "WHERE job_id = %s", (job,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
            answer = await asyncio.wait_for(pending, 10)
            return answer.status, reads.queries
        finally:
            await reads.stop()

    assert asyncio.run(scenario()) == ("finished", 4)
    assert store.asked == 1


class Permit:
    """A caller whose token or account can be ended by the test."""

    def __init__(self) -> None:
        self.allowed = True

    def seconds_left(self) -> float:
        return 1800.0

    async def still_allowed(self) -> bool:
        return self.allowed


def test_a_long_poll_and_an_event_stream_end_when_the_callers_account_is_erased(
        read_db: str) -> None:
    """At the next wake-up after the erasure (here: the job's own update) neither answers with
    the job: the long-poll ends (a 401 for the route) and so does the stream."""
    from api.reads import PermitEnded

    user, job = uuid4(), uuid4()
    with psycopg.connect(read_db, autocommit=True) as conn:
        conn.execute("INSERT INTO prediction_history (job_id, user_id, model_name, model_version, price, "
                     "status, features, created_at, version) VALUES (%s, %s, 'm', '1', 10, 'queued', %s, "
                     "now(), 1)", (job, user, json.dumps({})))

    async def scenario() -> tuple[str, str, list[Any]]:
        reads = CountingReads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False),
                              "unused", Notifier(read_db, CHANNEL))
        await reads.start()
        permit, delivered = Permit(), []

        async def follow() -> str:
            try:
                async for rows in reads.job_updates(user, 0, permit):
                    delivered.extend(rows)
            except PermitEnded:
                return "stream ended"
            return "stream ran out"

        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            poll = asyncio.create_task(reads.job_until_ended(user, job, 25, permit=permit))
            stream = asyncio.create_task(follow())
            await reads.answered(2)  # the poll and the stream have each read once: both wait
            permit.allowed = False  # DELETE /me
            async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
                await conn.execute("UPDATE prediction_history SET status = 'finished', result = 1.0 "
                                   "WHERE job_id = %s", (job,))
                await conn.execute("INSERT INTO job_updates (position, user_id, job_id, status, "
                                   "model_name, price, created_at) VALUES (7, %s, %s, 'finished', 'm', "
                                   "10, now())", (user, job))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
            try:
                await asyncio.wait_for(poll, 10)
                polled = "answered"
            except PermitEnded:
                polled = "poll ended"
            return polled, await asyncio.wait_for(stream, 10), delivered
        finally:
            await reads.stop()

    assert asyncio.run(scenario()) == ("poll ended", "stream ended", [])


def test_an_idle_event_stream_ends_soon_after_the_erasure_without_any_update(read_db: str) -> None:
    """An erased user's stream gets no job update to wake it: it still ends within a few
    seconds (before, it waited out its 30 s look)."""
    from api.reads import PermitEnded

    user = uuid4()

    async def scenario() -> str:
        reads = CountingReads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False),
                              "unused", Notifier(read_db, CHANNEL))
        await reads.start()
        permit = Permit()

        async def follow() -> str:
            try:
                async for _ in reads.job_updates(user, None, permit):
                    return "an update came"
            except PermitEnded:
                return "stream ended"
            return "stream ran out"

        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            stream = asyncio.create_task(follow())
            await reads.answered(2)  # where it stands, then the updates after it: it waits
            permit.allowed = False  # DELETE /me; nothing of this user's is ever projected again
            return await asyncio.wait_for(stream, 15)  # well before the 30 s look
        finally:
            await reads.stop()

    assert asyncio.run(scenario()) == "stream ended"
