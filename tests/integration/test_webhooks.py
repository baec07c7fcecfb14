"""Webhooks on real PostgreSQL: what the projector queues, and the sender against a real
HTTP receiver (signatures, retries with backoff, giving up, a crashed sender's lease)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from commands.application import CarpriceApp
from consumers.projector import ProjectionHandler
from domain.ids import wallet_id_for
from infra.published import PublishedEvent
from infra.webhook_http import Poster, Targets, verify
from infra.webhook_sender import CLAIM, Retry, Sender
from projections import webhooks
from projections.rebuild import rebuild
from tests.procs import wait_for
from tests.receiver import Receiver

pytestmark = pytest.mark.postgres
TOPIC = "hooks.events"


@pytest.fixture
def pool(read_db: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(read_db, min_size=1, max_size=4, kwargs={"autocommit": True}) as p:
        yield p


def _register(read_db: str, user: UUID, url: str, events: list[str], below: int | None = None) -> str:
    async def go() -> str:
        async with await psycopg.AsyncConnection.connect(read_db, autocommit=True) as conn:
            made = await webhooks.register(conn, user, uuid4(), url, events, below,
                                           "whsec_" + uuid4().hex, 10)
            assert made is not None
            return made[1]
    return asyncio.run(go())


def _delivered(app: CarpriceApp, *aggregates: UUID) -> list[PublishedEvent]:
    """The aggregates' events in log order with their store positions, as from one partition."""
    positions = {(n.originator_id, n.originator_version): n.id for n in
                 app.recorder.select_notifications(start=1, limit=10_000_000)
                 if n.originator_id in aggregates}
    events = sorted((e for a in aggregates for e in app.published_history(a)),
                    key=lambda e: positions[(UUID(e.aggregate_id), e.aggregate_version)])
    return [dataclasses.replace(e, position=positions[(UUID(e.aggregate_id), e.aggregate_version)],
                                topic=TOPIC, partition=0, offset=i) for i, e in enumerate(events)]


def _deliveries(read_db: str) -> list[tuple[str, str, dict[str, Any], int]]:
    with psycopg.connect(read_db, autocommit=True) as conn:
        return [(str(e), str(s), p, int(a)) for e, s, p, a in conn.execute(
            "SELECT event, status, payload, attempts FROM webhook_deliveries ORDER BY created_at")]


def _user(app: CarpriceApp, unique: str, credits: int) -> UUID:
    user = app.sign_up("Hook", f"hook-{unique}@example.com", "password-123").user_id
    if credits:
        app.deposit(user, credits)
    return user


def test_an_ended_job_queues_one_delivery_and_replays_and_rebuilds_queue_none(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 100)
    _register(read_db, user, "http://127.0.0.1:9/hook", ["job.ended"])
    handler = ProjectionHandler(pool, app.published_history)
    done = app.request_prediction(user, "linear_regression", car).job_id
    app.complete_prediction(done, 15000.0, "1")
    refunded = app.request_prediction(user, "linear_regression", car).job_id
    app.fail_prediction(refunded, "the model could not predict this car")
    events = _delivered(app, wallet_id_for(user), done, refunded)
    handler(events)
    queued = _deliveries(read_db)
    assert [(e, s, p["job_id"], p["status"]) for e, s, p, _ in queued] == [
        ("job.ended", "pending", str(done), "finished"), ("job.ended", "pending", str(refunded), "failed")]
    assert queued[0][2]["result"] == 15000.0 and "could not predict" in queued[1][2]["error"]
    handler(events)  # the relay replays the same events
    read = lambda after, limit: [e for e in events if e.position > after][:limit]  # noqa: E731
    with psycopg.connect(read_db, autocommit=True) as conn:
        assert rebuild(conn, "jobs", read) == len(events)
        assert rebuild(conn, "balances", read) > 0
    assert _deliveries(read_db) == queued


def test_balance_low_is_sent_once_per_fall_below_the_threshold(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 0)
    handler = ProjectionHandler(pool, app.published_history)
    handler(_delivered(app, wallet_id_for(user)))  # the wallet's row: balance 0
    _register(read_db, user, "http://127.0.0.1:9/hook", ["balance.low"], below=25)  # low already
    seen = 0

    def project() -> None:
        nonlocal seen
        events = [e for e in _delivered(app, wallet_id_for(user)) if e.aggregate_version > seen]
        seen = max([seen, *(e.aggregate_version for e in events)])
        handler(events)

    app.deposit(user, 40)
    project()
    assert _deliveries(read_db) == []  # back over the threshold: armed, nothing to say
    app.request_prediction(user, "linear_regression", car)  # 40 -> 30
    app.request_prediction(user, "linear_regression", car)  # 30 -> 20: below 25
    project()
    app.request_prediction(user, "linear_regression", car)  # 20 -> 10: still below
    project()
    assert [(e, p["balance"], p["balance_below"]) for e, _, p, _ in _deliveries(read_db)] == [
        ("balance.low", 20, 25)]
    app.deposit(user, 100)  # 110
    project()
    for _ in range(9):  # 110 -> 20
        app.request_prediction(user, "linear_regression", car)
    project()
    assert [p["balance"] for _, _, p, _ in _deliveries(read_db)] == [20, 20]


def _queue_one(app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str,
               car: dict[str, Any], url: str) -> tuple[str, UUID]:
    user = _user(app, unique, 100)
    secret = _register(read_db, user, url, ["job.ended"])
    job = app.request_prediction(user, "linear_regression", car).job_id
    app.complete_prediction(job, 9999.0, "1")
    ProjectionHandler(pool, app.published_history)(_delivered(app, wallet_id_for(user), job))
    return secret, job


def _run(sender: Sender, until: Any, what: str) -> None:
    thread = threading.Thread(target=sender.run)
    thread.start()
    try:
        wait_for(until, timeout=30, interval=0.05, what=what)
    finally:
        sender.stop()
        thread.join(10)


def test_a_failing_receiver_is_retried_with_the_same_signed_delivery_until_it_takes_it(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    receiver = Receiver(statuses=[500, 503])
    try:
        secret, job = _queue_one(app, pool, read_db, unique, car, receiver.url)
        sender = Sender(pool, Poster(timeout=5, allowed=Targets.parse("127.0.0.1")).post,
                        retry=Retry(max_attempts=5, base=0.1, cap=1.0))
        _run(sender, lambda: _deliveries(read_db)[0][1] == "delivered", "the delivery to succeed")
    finally:
        receiver.close()
    assert len(receiver.requests) == 3
    ids = {h["carprice-delivery"] for h, _ in receiver.requests}
    assert len(ids) == 1  # one delivery, retried: the receiver can deduplicate by its id
    for headers, body in receiver.requests:
        assert headers["carprice-event"] == "job.ended"
        assert verify(secret, headers["carprice-signature"], body)
        assert not verify("whsec_someone-else", headers["carprice-signature"], body)
    sent = json.loads(receiver.requests[-1][1])
    assert (sent["type"], sent["id"], sent["data"]["job_id"], sent["data"]["result"]) == (
        "job.ended", ids.pop(), str(job), 9999.0)
    with psycopg.connect(read_db, autocommit=True) as conn:
        attempts, last_status, error = conn.execute(
            "SELECT attempts, last_status, last_error FROM webhook_deliveries").fetchone()  # type: ignore[misc]
    assert (attempts, last_status, error) == (3, 200, None)


def test_a_receiver_that_never_takes_it_is_given_up_after_the_last_attempt(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    receiver = Receiver(always=503)
    try:
        _queue_one(app, pool, read_db, unique, car, receiver.url)
        sender = Sender(pool, Poster(timeout=5, allowed=Targets.parse("127.0.0.1")).post,
                        retry=Retry(max_attempts=3, base=0.05, cap=0.2))
        _run(sender, lambda: _deliveries(read_db)[0][1] == "failed", "the delivery to be given up")
    finally:
        receiver.close()
    assert len(receiver.requests) == 3 and _deliveries(read_db)[0][3] == 3
    with psycopg.connect(read_db, autocommit=True) as conn:
        assert conn.execute("SELECT last_status, last_error FROM webhook_deliveries").fetchone() == (
            503, "HTTP 503 Service Unavailable")


def test_what_a_crashed_sender_had_claimed_is_sent_by_another_after_its_lease(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    receiver = Receiver()
    try:
        _queue_one(app, pool, read_db, unique, car, receiver.url)
        with pool.connection() as conn:  # a sender claims it, then dies before sending
            assert len(conn.execute(CLAIM, {"lease": 0.5, "limit": 10}).fetchall()) == 1
        sender = Sender(pool, Poster(timeout=5, allowed=Targets.parse("127.0.0.1")).post,
                        retry=Retry(max_attempts=3, base=0.05))
        assert sender.send_due() == 0  # still leased to the dead one
        _run(sender, lambda: _deliveries(read_db)[0][1] == "delivered", "the delivery after the lease")
    finally:
        receiver.close()
    assert len(receiver.requests) == 1 and _deliveries(read_db)[0][3] == 2
