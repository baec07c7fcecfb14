"""The event bus end to end: relay -> Kafka -> inference and projectors, on real services."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.application import CarpriceApp
from domain.events import JOB_COMPLETED, WALLET_CAPTURED, WALLET_RESERVED
from domain.ids import wallet_id_for
from infra.kafka_client import EndOffsets, producer
from infra.leases import lag as consumer_lag
from projections.state import lag as projection_lag
from tests.conftest import Stack, write_side
from tests.procs import Processes, topic_messages, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _user(app: CarpriceApp, tag: str, credits: int) -> UUID:
    user = app.sign_up("Bus", f"bus-{tag}@example.com", "password-123").user_id
    app.deposit(user, credits)
    return user


def _rows(db: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:
            return []


def _history(db: str, job: UUID) -> tuple[Any, ...] | None:
    rows = _rows(db, "SELECT status, result, error, model_name, model_version, price, finished_at "
                     "FROM prediction_history WHERE job_id = %s", job)
    return rows[0] if rows else None


def _events_of(app: CarpriceApp, aggregate: UUID) -> list[str]:
    return [type(e).TOPIC for e in app.events.get(aggregate)]  # type: ignore[attr-defined]


def test_request_to_completion_fills_all_three_read_tables(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any], registry  # type: ignore[no-untyped-def]
) -> None:
    procs.start("relay")
    procs.start("consume", "projections")
    user = _user(app, unique, 100)
    job = app.request_prediction(user, "gradient_boosting", car).job_id
    queued = wait_for(lambda: _rows(stack.database_url,
                                    "SELECT status FROM running_jobs WHERE job_id = %s", job),
                      what="the job in running_jobs")
    assert queued == [("queued",)]
    assert _history(stack.database_url, job)[0] == "queued"  # type: ignore[index]
    procs.start("consume", "inference")
    done = wait_for(lambda: (h := _history(stack.database_url, job)) and h[0] == "finished" and h,
                    what="the job finished in prediction_history")
    status, result, error, model, version, price, finished_at = done
    gb = registry.card("gradient_boosting").price
    assert (model, version, price, error) == ("gradient_boosting", "1", gb, None)
    assert 5000 < result < 50000 and finished_at is not None
    assert app.job(job).result == result
    assert _rows(stack.database_url, "SELECT 1 FROM running_jobs WHERE job_id = %s", job) == []
    balance = wait_for(lambda: _rows(stack.database_url,
                                     "SELECT balance, version FROM balances WHERE user_id = %s "
                                     "AND balance = %s", user, 100 - gb), what="the balance charged")
    assert balance == [(100 - gb, app.balance(user).version)]


def test_inference_killed_before_commit_completes_the_job_exactly_once(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    procs.start("relay")
    user = _user(app, unique, app.catalog.offer("random_forest").price)
    job = app.request_prediction(user, "random_forest", car).job_id
    head = app.head_position()
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s AND "
                           "position >= %s", f"t{unique}.events", head), what="our job published")
    # One big first batch, so the crash
    # comes right after our job's outcome was recorded and before the offsets are committed.
    crashing = procs.start("consume", "inference", crash_at=("inference.before_commit",), extra_env={
        "INFERENCE_BATCH_SIZE": "100000", "INFERENCE_BATCH_MS": "3000"})
    wait_for(lambda: crashing.popen.poll() is not None, timeout=90, what="the SIGKILL crash point")
    assert "crash point inference.before_commit" in crashing.text()
    assert app.job(job).status == "finished"  # recorded before the crash
    survivor = procs.start("consume", "inference")  # redelivery of the uncommitted request
    # the group hands the dead member's partitions over after its session times out
    wait_for(lambda: "newly recorded" in survivor.text(), timeout=90,
             what="the request to be redelivered to the restarted consumer")
    survivor.stop()
    assert " 0 newly recorded" in survivor.text()  # predicted again, recorded nothing twice
    assert _events_of(app, job).count(JOB_COMPLETED) == 1
    wallet = _events_of(app, wallet_id_for(user))
    assert wallet.count(WALLET_RESERVED) == 1 and wallet.count(WALLET_CAPTURED) == 1
    assert app.balance(user).balance == 0


def test_relay_killed_mid_stream_loses_nothing_and_keeps_per_user_order(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    users = [_user(app, f"{unique}-{i}", 1) for i in range(4)]
    for i in range(150):
        app.deposit(users[i % 4], 1)
    head = app.head_position()
    relay = procs.start("relay")
    wait_for(lambda: _rows(stack.database_url, "SELECT position FROM relay_position WHERE "
                           "name = %s AND position > 0", f"t{unique}.events"), timeout=60,
             interval=0.01, what="the relay to publish a first batch")
    relay.kill()
    procs.start("relay")
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s "
                           "AND position >= %s", f"t{unique}.events", head), what="relay catch-up")
    messages = topic_messages(stack.kafka_bootstrap, f"t{unique}.events")
    mine = {str(u) for u in users}
    seen: dict[str, list[int]] = {}
    for m in messages:
        value = json.loads(m.value)
        assert dict(m.headers)["event_type"].decode() == value["type"]
        if value["user_id"] in mine:
            seen.setdefault(value["user_id"], []).append(value["position"])
    for user in users:
        expected = [n.id for n in app.recorder.select_notifications(start=1, limit=100_000)
                    if n.originator_id in (user, wallet_id_for(user))]
        first_seen = list(dict.fromkeys(seen[str(user)]))
        assert first_seen == expected  # nothing missing, nothing out of order
        assert len({m.partition for m in messages
                    if json.loads(m.value)["user_id"] == str(user)}) == 1


def test_duplicate_deliveries_leave_the_read_tables_unchanged(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    procs.start("relay")
    procs.start("consume", "projections")
    procs.start("consume", "inference")
    user = _user(app, unique, 100)
    job = app.request_prediction(user, "linear_regression", car).job_id
    wait_for(lambda: (h := _history(stack.database_url, job)) and h[0] == "finished",
             what="job finished")
    lr = app.catalog.offer("linear_regression").price
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM balances WHERE user_id = %s AND "
                           "balance = %s", user, 100 - lr), what="the charged balance")
    snapshot = (_rows(stack.database_url, "SELECT * FROM balances WHERE user_id = %s", user),
                _rows(stack.database_url, "SELECT * FROM prediction_history WHERE user_id = %s", user))
    # Deliver every message of this user again, as a relay that crashed before saving would.
    topic = f"t{unique}.events"
    originals = [m for m in topic_messages(stack.kafka_bootstrap, topic)
                 if m.key == str(user).encode()]
    assert len(originals) >= 5
    prod = producer(stack.kafka_bootstrap)
    acks = [prod.send(topic, key=m.key, value=m.value, headers=m.headers) for m in originals]
    prod.flush()
    last = max((a.get(30) for a in acks), key=lambda md: md.offset)
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM projection_offsets WHERE topic = %s "
                           "AND partition = %s AND kafka_offset >= %s", topic, last.partition,
                           last.offset), what="the projector past the duplicates")
    assert (_rows(stack.database_url, "SELECT * FROM balances WHERE user_id = %s", user),
            _rows(stack.database_url, "SELECT * FROM prediction_history WHERE user_id = %s",
                  user)) == snapshot
    assert _rows(stack.database_url, "SELECT 1 FROM running_jobs WHERE user_id = %s", user) == []


def test_input_the_model_cannot_handle_fails_the_job_and_refunds_it(
    stack: Stack, registry, procs: Processes, unique: str, car: dict[str, Any]  # type: ignore[no-untyped-def]
) -> None:
    from domain.catalog import ModelOffer

    # A catalogue whose schema accepts any text for horsepower: such input passes
    # validation (as a lax card or an old client might let it) but breaks the model.
    card = registry.card("linear_regression")
    schema = {**card.input_schema, "horsepower": {"kind": "text", "max_length": 64}}

    class LaxCatalog:
        def offer(self, name: str) -> ModelOffer:
            return ModelOffer(card.name, card.version, card.price, schema)

        def follow(self, promoted: object) -> Callable[[], None]:
            return lambda: None

    lax = write_side(stack, registry)
    lax.catalog = LaxCatalog()
    try:
        user = _user(lax, unique, 30)
        bad = lax.request_prediction(user, "linear_regression", {**car, "horsepower": "lots"}).job_id
        good = lax.request_prediction(user, "linear_regression", {**car, "horsepower": "110"}).job_id
        procs.start("relay")
        procs.start("consume", "inference")
        wait_for(lambda: lax.job(bad).status == "failed", timeout=90, what="the bad job to fail")
        assert "could not handle this input" in (lax.job(bad).error or "")
        wait_for(lambda: lax.job(good).ended, timeout=30, what="the other job to end")
        assert lax.job(good).status == "finished"  # one bad car fails alone
        assert lax.balance(user).balance == 30 - card.price  # the failed job was refunded
    finally:
        lax.close()


def test_two_inference_consumers_split_the_partitions_and_finish_every_job(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    procs.start("relay")
    first = procs.start("consume", "inference")
    # one after the other: Tansu can loop in rebalances when two members join at once
    wait_for(lambda: "partitions assigned" in first.text(), timeout=60, what="the first member")
    second = procs.start("consume", "inference")

    def split() -> bool:  # the second member holds partitions, the first has given them up
        mine = re.findall(r"partitions assigned: (.*)", second.text())
        return bool(mine) and mine[-1] != "none" and first.text().count("partitions assigned") >= 2

    wait_for(split, timeout=90, what="the group to split the partitions")
    users = [_user(app, f"{unique}-{i}", 50) for i in range(16)]
    jobs = [app.request_prediction(u, "linear_regression", car).job_id for u in users for _ in range(2)]
    wait_for(lambda: all(app.job(j).status == "finished" for j in jobs), timeout=120,
             what="every job to finish")
    first.stop()
    second.stop()
    predicted = [int(p.text().rsplit("predicted ", 1)[1].split()[0]) for p in (first, second)]
    assert all(n > 0 for n in predicted), predicted  # both took part
    assert "partitions assigned" in second.text()
    assert sum(predicted) >= len(jobs)


def test_rebuild_while_writes_continue_ends_identical_to_the_write_side(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    from infra.published import from_notification
    from projections.rebuild import rebuild

    procs.start("relay")
    procs.start("consume", "projections")
    procs.start("consume", "inference")
    # credit for every write however long the rebuild takes (it replays the whole store)
    users = [_user(app, f"{unique}-{i}", 100_000) for i in range(5)]
    stop = threading.Event()
    jobs: list[UUID] = []

    def write() -> None:
        i = 0
        while not stop.is_set():
            user = users[i % len(users)]
            if i % 3:
                jobs.append(app.request_prediction(user, "linear_regression", car).job_id)
            else:
                app.deposit(user, 3)
            i += 1
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    wait_for(lambda: len(jobs) > 20, timeout=60, interval=0.05, what="writes before the rebuild")

    def read(after: int, limit: int) -> list[Any]:
        rows = app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [from_notification(n, app.mapper.transcoder) for n in rows]

    try:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            for name in ("balances", "jobs"):
                assert rebuild(conn, name, read) > 0
        swapped = len(jobs)
        wait_for(lambda: len(jobs) > swapped + 10, timeout=60, interval=0.05,
                 what="writes after the swap")
    finally:
        stop.set()
        writer.join()
    assert len(jobs) > 20

    def settled() -> bool:
        for user in users:
            expected = app.balance(user)
            row = _rows(stack.database_url, "SELECT balance, version FROM balances WHERE user_id = %s",
                        user)
            if row != [(expected.balance, expected.version)]:
                return False
        statuses = dict(_rows(stack.database_url, "SELECT job_id, status FROM prediction_history "
                              "WHERE job_id = ANY(%s)", jobs))
        return statuses == {j: app.job(j).status for j in jobs} and all(
            s == "finished" for s in statuses.values())

    wait_for(settled, timeout=90, interval=1, what="read tables equal to the write side")
    running = _rows(stack.database_url, "SELECT job_id FROM running_jobs WHERE job_id = ANY(%s)", jobs)
    assert running == []


def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    procs.start("relay")
    projector = procs.start("consume", "projections")
    topic = f"t{unique}.events"
    # A first account, projected, shows the topic exists and the projector reads it.
    first = _user(app, unique + "a", 5)
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM balances WHERE user_id = %s AND "
                           "balance = 5", first), what="the first account to be projected")
    prod = producer(stack.kafka_bootstrap)
    prod.send(topic, key=b"someone", value=b"\x00not json at all")
    prod.flush()
    user = _user(app, unique, 12)  # published after the poison message
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM balances WHERE user_id = %s AND "
                           "balance = 12", user), what="the projector to keep going")
    dead = wait_for(lambda: topic_messages(stack.kafka_bootstrap, f"{topic}.dlq"), what="the dead letter")
    assert [m.value for m in dead] == [b"\x00not json at all"]
    headers = dict(dead[0].headers)
    assert headers["dlq_source"].decode().startswith(f"{topic}[")
    assert headers["dlq_reason"] == b"undecodable" and headers["dlq_consumer"] == b"projector"
    assert "undecodable" in projector.text()
    indexed = _rows(stack.database_url, "SELECT consumer, reason, dlq_offset FROM dead_letters "
                    "WHERE source_topic = %s", topic)
    assert indexed == [("projector", "undecodable", dead[0].offset)]


def test_a_broker_that_lost_its_data_gets_every_event_again(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    from infra.positions import rewind

    user = _user(app, unique, 50)
    job = app.request_prediction(user, "linear_regression", car).job_id
    # The relay saved a position past this job, then the broker lost its topics (as Tansu's
    # memory storage does on a restart): without a republish the job would stay queued, charged.
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        rewind(conn, f"t{unique}.events", app.head_position() or 0)
    relay = procs.start("relay")
    procs.start("consume", "projections")
    procs.start("consume", "inference")
    wait_for(lambda: app.job(job).status == "finished", timeout=120, what="the job to be predicted")
    assert "broker data lost" in relay.text()
    wait_for(lambda: _rows(stack.database_url, "SELECT balance FROM balances WHERE user_id = %s", user)
             == [(50 - app.catalog.offer("linear_regression").price,)], timeout=60,
             what="the projected balance")


def test_a_replay_from_a_position_publishes_again_and_changes_nothing(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 30)
    job = app.request_prediction(user, "linear_regression", car).job_id
    first = procs.start("relay")
    procs.start("consume", "projections")
    procs.start("consume", "inference")
    wait_for(lambda: _history(stack.database_url, job) and _history(stack.database_url, job)[0]  # type: ignore[index]
             == "finished", timeout=90, what="the job in history")
    first.stop()
    start = min(n.id for n in app.recorder.select_notifications(start=1, limit=1_000_000)
                if n.originator_id in (user, wallet_id_for(user), job)) - 1
    replay = procs.start("relay", "--from-position", str(start))
    wait_for(lambda: "replay requested" in replay.text(), timeout=30, what="the replay")

    def copies_of_the_job_request() -> int:
        values = [json.loads(m.value) for m in topic_messages(stack.kafka_bootstrap, f"t{unique}.events")]
        return sum(1 for v in values if v["aggregate_id"] == str(job) and v["type"] == "job.requested.v1")

    wait_for(lambda: copies_of_the_job_request() >= 2, timeout=30, what="the request published again")
    ends = EndOffsets(stack.kafka_bootstrap, f"t{unique}.events")

    def consumed() -> bool:  # inference saved its positions past the copies; the projector applied them
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            behind = projection_lag(conn, f"t{unique}.events", ends(), 0)
            lag = consumer_lag(conn, f"t{unique}-inference", f"t{unique}.events", ends())
        return lag == 0 and not any(behind.values())

    try:
        wait_for(consumed, timeout=60, what="the copies consumed")
    finally:
        ends.close()
    assert _events_of(app, job).count(JOB_COMPLETED) == 1  # predicted once, not again
    lr = app.catalog.offer("linear_regression").price
    assert _rows(stack.database_url, "SELECT balance FROM balances WHERE user_id = %s", user) == [(30 - lr,)]
    assert _history(stack.database_url, job)[0] == "finished"  # type: ignore[index]
