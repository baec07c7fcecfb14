"""The doors the security probe found open, on a real PostgreSQL: Idempotency-Keys claimed
before their request runs, and the erased-accounts feed read in commit order."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from infra.erased import ErasedUsers
from infra.idempotency import KeyInFlight, KeyReused, PgIdempotency
from infra.personal import personal_data_for
from tests.conftest import Stack

pytestmark = [pytest.mark.postgres]


def test_a_key_in_flight_is_409_another_body_422_and_a_failed_request_gives_it_back(
        stack: Stack) -> None:
    user = uuid4()
    with ConnectionPool(stack.database_url, min_size=1, max_size=2) as pool:
        keys = PgIdempotency(pool)
        assert keys.replay(user, "predict", "k1", "body-a") is None  # claimed: run it
        with pytest.raises(KeyInFlight):  # 409 with Retry-After (api/errors.py)
            keys.replay(user, "predict", "k1", "body-a")
        with pytest.raises(KeyReused):  # in flight, and another body: 422
            keys.replay(user, "predict", "k1", "body-b")
        keys.release(user, "predict", "k1")  # the first request failed (402, say)
        assert keys.replay(user, "predict", "k1", "body-b") is None  # the key is free again
        keys.remember(user, "predict", "k1", "body-b", {"job_id": "j"})
        assert keys.replay(user, "predict", "k1", "body-b") == {"job_id": "j"}
        with pytest.raises(KeyReused):
            keys.replay(user, "predict", "k1", "body-a")
        keys.release(user, "predict", "k1")  # a finished answer is never released
        assert keys.replay(user, "predict", "k1", "body-b") == {"job_id": "j"}


def test_concurrent_requests_with_one_key_run_one_and_refuse_the_others(stack: Stack) -> None:
    user, outcomes = uuid4(), []
    with ConnectionPool(stack.database_url, min_size=1, max_size=8) as pool:
        keys = PgIdempotency(pool)
        barrier = threading.Barrier(8)

        def claim(body: str) -> None:
            barrier.wait()
            try:
                outcomes.append(keys.replay(user, "batch", "same", body) is None and "claimed")
            except KeyInFlight:
                outcomes.append(409)
            except KeyReused:
                outcomes.append(422)

        threads = [threading.Thread(target=claim, args=("a" if i % 2 else "b",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # one ran; the 3 others with its body are in flight (409), the 4 with the other body 422
    assert sorted(map(str, outcomes)) == ["409", "409", "409", "422", "422", "422", "422",
                                          "claimed"]


def _waiting_on_a_lock(stack: Stack) -> bool:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query LIKE 'LOCK TABLE erasures%'").fetchone()
    return bool(row and row[0])


def test_an_erasure_that_commits_late_is_never_skipped_by_the_feed(app: Any, stack: Stack) -> None:
    """Erasure A takes its place in the feed and commits late; erasure B waits for it, so a
    reader that saw B has seen A (read by timestamp, B could be seen first and A skipped)."""
    personal = personal_data_for(app.recorder)
    first, second = uuid4(), uuid4()
    slow = psycopg.connect(stack.database_url)
    slow.execute("LOCK TABLE erasures IN SHARE ROW EXCLUSIVE MODE")
    slow.execute("INSERT INTO erasures (user_id) VALUES (%s)", (first,))  # A, not committed
    b = threading.Thread(target=personal.shred, args=(second,))
    b.start()

    async def feed() -> tuple[list[bool], list[bool]]:
        async with AsyncConnectionPool(stack.database_url, min_size=1, open=False) as pool:
            erased = ErasedUsers(pool, refresh=0)
            before = [await erased.erased(u) for u in (first, second)]
            slow.commit()
            b.join(30)
            return before, [await erased.erased(u) for u in (first, second)]

    try:
        for _ in range(200):
            if _waiting_on_a_lock(stack):
                break
            b.join(0.05)
        assert b.is_alive() and _waiting_on_a_lock(stack)  # B waits for A's commit
        assert asyncio.run(feed()) == ([False, False], [True, True])
    finally:
        slow.close()
        b.join(30)
    with psycopg.connect(stack.database_url) as conn:
        seqs = dict(conn.execute("SELECT user_id, seq FROM erasures WHERE user_id = ANY(%s)",
                                 ([first, second],)).fetchall())
    assert seqs[first] < seqs[second]


def test_failures_slow_the_address_that_failed_and_successes_are_limited_per_client_too(
        stack: Stack) -> None:
    from infra.throttle import Limit, Throttle

    email = f"{uuid4().hex}@example.com"
    attacker, owner, busy = (f"10.9.{i}.{uuid4().int % 250}" for i in range(3))
    with ConnectionPool(stack.database_url, min_size=1, max_size=2) as pool:
        throttle = Throttle(pool, account=Limit(3, 60), client=Limit(50, 60), signups=Limit(5, 60),
                            signins=Limit(5, 60))
        waits = [throttle.sign_in_attempt(email, attacker) for _ in range(4)]  # 4 wrong passwords
        assert waits[:3] == [0, 0, 0] and waits[3] > 0
        assert throttle.sign_in_attempt(email, owner) == 0  # the owner, elsewhere: not slowed
        throttle.sign_in_succeeded(email, owner)
        for _ in range(5):  # correct passwords, from one address
            assert throttle.sign_in_attempt(f"{uuid4().hex}@example.com", busy) == 0
            throttle.sign_in_succeeded(email, busy)
        assert throttle.sign_in_attempt(email, busy) > 0  # the 6th sign-in in the window waits
