"""The event bus end to end: relay -> Kafka -> inference and projectors, on real services."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.app import CarpriceApp
from domain.events import JOB_COMPLETED, WALLET_CHARGED
from domain.ids import wallet_id_for
from infra.bootstrap import build_app
from infra.kafka_client import consumer, producer
from infra.settings import REPO_ROOT
from model_registry.features import load_dataset
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def car() -> dict[str, Any]:
    x, _ = load_dataset(REPO_ROOT / "data")
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[10].to_dict().items()}


@pytest.fixture(scope="module")
def app(stack: Stack, registry) -> Iterator[CarpriceApp]:  # type: ignore[no-untyped-def]
    application = build_app(stack.settings, registry=registry, url=stack.database_url)
    yield application
    application.close()


@pytest.fixture
def procs(stack: Stack, registry, tmp_path: Path, unique: str) -> Iterator[Processes]:  # type: ignore[no-untyped-def]
    """Processes of this test, on topics of their own (prefix t<unique>)."""
    import os

    env = {**os.environ, "DATABASE_URL": stack.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": f"t{unique}",
           "KAFKA_PARTITIONS": "4", "INFERENCE_BATCH_MS": "10"}
    env.pop("CARPRICE_CRASH_AT", None)
    ps = Processes(env, tmp_path)
    yield ps
    ps.stop_all()


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
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
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
    assert (model, version, price, error) == ("gradient_boosting", "1", 25, None)
    assert 5000 < result < 50000 and finished_at is not None
    assert app.job(job).result == result
    assert _rows(stack.database_url, "SELECT 1 FROM running_jobs WHERE job_id = %s", job) == []
    balance = wait_for(lambda: _rows(stack.database_url,
                                     "SELECT balance, version FROM balances WHERE user_id = %s "
                                     "AND balance = 75", user), what="balance 75")
    assert balance == [(75, app.balance(user).version)]


def test_inference_killed_before_commit_completes_the_job_exactly_once(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    procs.start("relay")
    crashing = procs.start("consume", "inference",
                           extra_env={"CARPRICE_CRASH_AT": "inference.before_commit"})
    user = _user(app, unique, 40)
    job = app.request_prediction(user, "random_forest", car).job_id
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
    assert _events_of(app, wallet_id_for(user)).count(WALLET_CHARGED) == 1
    assert app.balance(user).balance == 0


def _topic_messages(bootstrap: str, topic: str, group: str, expected: int) -> list[Any]:
    cons = consumer(bootstrap, group, topic)
    got: list[Any] = []
    deadline = time.monotonic() + 90
    while len(got) < expected and time.monotonic() < deadline:
        for records in cons.poll(timeout_ms=500).values():
            got += records
    cons.close()
    return got


def test_relay_killed_mid_stream_loses_nothing_and_keeps_per_user_order(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    users = [_user(app, f"{unique}-{i}", 1) for i in range(4)]
    for i in range(150):
        app.deposit(users[i % 4], 1)
    head = app.recorder.max_notification_id()
    relay = procs.start("relay")
    wait_for(lambda: _rows(stack.database_url, "SELECT position FROM relay_position WHERE "
                           "name = %s AND position > 0", f"t{unique}.events"), timeout=60,
             interval=0.01, what="the relay to publish a first batch")
    relay.kill()
    procs.start("relay")
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s "
                           "AND position >= %s", f"t{unique}.events", head), what="relay catch-up")
    messages = _topic_messages(stack.kafka_bootstrap, f"t{unique}.events", f"check-{unique}", head)
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
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM balances WHERE user_id = %s AND "
                           "balance = 90", user), what="balance 90")
    snapshot = (_rows(stack.database_url, "SELECT * FROM balances WHERE user_id = %s", user),
                _rows(stack.database_url, "SELECT * FROM prediction_history WHERE user_id = %s", user))
    # Deliver every message of this user again, as a relay that crashed before saving would.
    topic = f"t{unique}.events"
    head = app.recorder.max_notification_id() or 0
    originals = [m for m in _topic_messages(stack.kafka_bootstrap, topic, f"dup-{unique}", head)
                 if m.key == str(user).encode()]
    assert len(originals) >= 5
    prod = producer(stack.kafka_bootstrap)
    for m in originals:
        prod.send(topic, key=m.key, value=m.value, headers=m.headers)
    prod.flush()
    marker = _user(app, f"{unique}-marker", 7)  # once this shows, the duplicates were consumed
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM balances WHERE user_id = %s AND "
                           "balance = 7", marker), what="marker balance")
    time.sleep(1)
    assert (_rows(stack.database_url, "SELECT * FROM balances WHERE user_id = %s", user),
            _rows(stack.database_url, "SELECT * FROM prediction_history WHERE user_id = %s",
                  user)) == snapshot
    assert _rows(stack.database_url, "SELECT 1 FROM running_jobs WHERE user_id = %s", user) == []
