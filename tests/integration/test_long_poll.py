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


def test_a_long_poll_is_answered_when_the_job_ends_and_otherwise_after_its_wait(read_db: str) -> None:
    user, job = uuid4(), uuid4()
    with psycopg.connect(read_db, autocommit=True) as conn:
        conn.execute("INSERT INTO prediction_history (job_id, user_id, model_name, model_version, price, "
                     "status, features, created_at, version) VALUES (%s, %s, 'm', '1', 10, 'queued', %s, "
                     "now(), 1)", (job, user, json.dumps({})))

    async def scenario() -> tuple[str, str, str]:
        reads = Reads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False), "unused",
                      Notifier(read_db, CHANNEL))
        await reads.start()
        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            waited = await reads.job_until_ended(user, job, 0.3)  # nothing happens: its status then
            pending = asyncio.create_task(reads.job_until_ended(user, job, 25))
            await asyncio.sleep(0.3)
            async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
                await conn.execute("UPDATE prediction_history SET status = 'started' WHERE job_id = %s",
                                   (job,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(uuid4())))  # someone else
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))  # not ended yet
                await asyncio.sleep(0.3)
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


class CountingReads(Reads):
    """Reads that count the queries they make."""

    queries = 0

    async def _run(self, query: Any) -> Any:
        self.queries += 1
        return await super()._run(query)


class NoStoreReads:
    """The write side, which a job that shows in the read table never needs."""

    def job(self, job_id: Any, user: Any = None) -> Any:
        raise AssertionError("the store was read")


def test_a_long_poll_right_after_the_post_makes_one_query_per_change_of_the_users_rows(
        read_db: str) -> None:
    """The usual long-poll: the GET arrives before the projector has written the job's row.
    It reads the row (none), asks the store whether the job exists, then reads once when the
    row shows and once when the job ends: 4 queries (it made 6 with a subscription per step)."""
    from api.routes.predict import read_job

    user, job = uuid4(), uuid4()
    with psycopg.connect(read_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE stored_events (originator_id uuid, originator_version int)")
        conn.execute("INSERT INTO stored_events VALUES (%s, 1)", (job,))

    async def scenario() -> tuple[str, int]:
        reads = CountingReads(AsyncConnectionPool(read_db, min_size=1, max_size=2, open=False),
                              "stored_events", Notifier(read_db, CHANNEL))
        await reads.start()
        try:
            await asyncio.wait_for(reads.notifier.listening.wait(), 10)
            pending = asyncio.create_task(read_job(reads, cast(Any, NoStoreReads()), user, job, 25))
            await asyncio.sleep(0.3)
            async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
                await conn.execute(
                    "INSERT INTO prediction_history (job_id, user_id, model_name, model_version, "
                    "price, status, features, created_at, version) VALUES (%s, %s, 'm', '1', 10, "
                    "'queued', %s, now(), 1)", (job, user, json.dumps({})))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
                await asyncio.sleep(0.3)
                await conn.execute("UPDATE prediction_history SET status = 'finished', result = 1.0 "
                                   "WHERE job_id = %s", (job,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(user)))
            answer = await asyncio.wait_for(pending, 10)
            return answer.status, reads.queries
        finally:
            await reads.stop()

    assert asyncio.run(scenario()) == ("finished", 4)
