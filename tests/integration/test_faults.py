"""Faults no input or crash may turn into a stuck pipeline or a held credit (real services)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.application import CarpriceApp
from commands.audit import replay_ledger
from commands.results import Outcome
from domain.events import JOB_COMPLETED, JOB_FAILED
from infra.kafka_client import admin, ensure_topics, producer
from model_registry.store import ARTIFACT, CARD, sha256_of
from tests import REPO_ROOT
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _user(app: CarpriceApp, tag: str, credits: int) -> UUID:
    user = app.sign_up("Fault", f"fault-{tag}@example.com", "password-123").user_id
    app.deposit(user, credits)
    return user


def _rows(db: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db, autocommit=True) as conn:
        try:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable:
            return []


def _topics(app: CarpriceApp, job: UUID) -> list[str]:
    return [type(e).TOPIC for e in app.events.get(job)]  # type: ignore[attr-defined]


def test_an_unreadable_artifact_fails_its_jobs_refunds_them_and_the_consumer_goes_on(
    app: CarpriceApp, procs: Processes, registry, tmp_path: Path, unique: str,  # type: ignore[no-untyped-def]
    car: dict[str, Any],
) -> None:
    # The artifact passes its integrity check (its card names its sha256) but cannot be read.
    broken = tmp_path / "models"
    shutil.copytree(registry.root, broken)
    version_dir = broken / "random_forest" / f"v{registry.card('random_forest').version}"
    (version_dir / ARTIFACT).write_bytes(b"not a pickle at all")
    card = json.loads((version_dir / CARD).read_text())
    card["sha256"] = sha256_of(version_dir / ARTIFACT)
    (version_dir / CARD).write_text(json.dumps(card))
    user = _user(app, unique, 100)
    doomed = app.request_prediction(user, "random_forest", car).job_id
    fine = app.request_prediction(user, "linear_regression", car).job_id
    procs.start("relay")
    inference = procs.start("consume", "inference", extra_env={"MODEL_REGISTRY_DIR": str(broken)})
    wait_for(lambda: app.job(doomed).ended and app.job(fine).ended, timeout=90, what="both jobs to end")
    assert (app.job(doomed).status, app.job(doomed).code) == ("failed", "model_unavailable")
    assert app.job(fine).status == "finished"
    assert app.balance(user).balance == 100 - app.catalog.offer("linear_regression").price
    later = app.request_prediction(user, "linear_regression", car).job_id  # it keeps consuming
    wait_for(lambda: app.job(later).status == "finished", timeout=60, what="a later job")
    assert inference.popen.poll() is None


def test_a_job_nobody_predicts_is_reaped_once_refunded_and_shown_failed(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 50)
    job = app.request_prediction(user, "linear_regression", car, deadline_seconds=5).job_id
    procs.start("relay")
    procs.start("consume", "projections")
    reapers = [procs.start("reaper"), procs.start("reaper")]  # one active, one standing by
    wait_for(lambda: app.job(job).status == "failed", timeout=60, what="the reaper to expire the job")
    assert app.job(job).code == "expired"
    assert app.balance(user).balance == 50
    assert [e.type for e in replay_ledger(app, user).entries].count("Released") == 1
    assert _topics(app, job).count(JOB_FAILED) == 1
    wait_for(lambda: _rows(stack.database_url, "SELECT status, error FROM prediction_history "
                           "WHERE job_id = %s AND status = 'failed'", job), timeout=60,
             what="the read table to show the failure")
    assert not _rows(stack.database_url, "SELECT 1 FROM running_jobs WHERE job_id = %s", job)
    wait_for(lambda: any("standing by" in r.text() for r in reapers), timeout=10, what="a standby")


def test_a_late_completion_racing_the_reaper_gets_either_a_result_or_a_refund(
    app: CarpriceApp, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 1000)
    price = app.catalog.offer("linear_regression").price
    jobs = [app.request_prediction(user, "linear_regression", car).job_id for _ in range(40)]
    barrier = threading.Barrier(3)

    def complete() -> None:
        barrier.wait()
        for j in jobs:
            app.record_outcomes([Outcome(j, result=5000.0, model_version="1")])

    def expire(order: list[UUID]) -> None:
        barrier.wait()
        for j in order:
            app.expire_prediction(j)

    threads = [threading.Thread(target=complete), threading.Thread(target=expire, args=(jobs[::-1],)),
               threading.Thread(target=expire, args=(jobs[::2] + jobs[1::2],))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refunded = [e.job_id for e in replay_ledger(app, user).entries if e.type == "Released"]
    for j in jobs:
        outcomes = [t for t in _topics(app, j) if t in (JOB_COMPLETED, JOB_FAILED)]
        assert len(outcomes) == 1  # whichever was recorded first, and nothing after it
        assert (outcomes[0] == JOB_FAILED) == (refunded.count(j) == 1) and refunded.count(j) <= 1
    finished = sum(app.job(j).status == "finished" for j in jobs)
    assert app.balance(user).balance == 1000 - finished * price


def test_broker_data_lost_while_the_relay_runs_is_published_again(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    topic = f"t{unique}.events"
    procs.env["RELAY_CHECK_SECONDS"] = "1"
    relay = procs.start("relay")
    user = _user(app, unique, 100)
    lost = app.request_prediction(user, "linear_regression", car).job_id
    head = app.head_position()
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s AND "
                           "position >= %s", topic, head), what="the job published")
    client = admin(stack.kafka_bootstrap)
    try:  # the broker loses the topic while the relay runs (a restart, a volume lost)
        client.delete_topics([topic])
    finally:
        client.close()
    ensure_topics(stack.kafka_bootstrap, [topic], 4)
    newer = app.request_prediction(user, "linear_regression", car).job_id  # published after the loss
    wait_for(lambda: "broker data lost" in relay.text(), timeout=60, what="the relay to notice")
    procs.start("consume", "inference")
    wait_for(lambda: app.job(lost).status == "finished" and app.job(newer).status == "finished",
             timeout=120, what="both jobs predicted")
    assert relay.popen.poll() is None  # it never stopped


def test_the_dlq_commands_list_show_and_replay(
    procs: Processes, stack: Stack, registry, unique: str, app: CarpriceApp  # type: ignore[no-untyped-def]
) -> None:
    topic = f"t{unique}.events"
    _user(app, unique, 1)  # something to publish, so the relay creates the topics
    procs.start("relay")
    procs.start("consume", "projections")
    wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s",
                           topic), what="the topics")
    prod = producer(stack.kafka_bootstrap)
    prod.send(topic, key=b"someone", value=b"\x00garbage").get(timeout=30)
    prod.close()
    env = {**os.environ, "DATABASE_URL": stack.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "KAFKA_TOPIC_PREFIX": f"t{unique}"}

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", "dlq", *args], env=env,
                              capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)

    def mine() -> list[dict[str, Any]]:
        return [r for r in json.loads(dlq("list", "--json").stdout) if r["source_topic"] == topic]

    (letter,) = wait_for(mine, timeout=60, what="the dead letter indexed")
    assert (letter["consumer"], letter["reason"]) == ("projector", "undecodable")
    shown = json.loads(dlq("show", str(letter["id"])).stdout)
    assert shown["value"] == "\x00garbage" and shown["headers"]["dlq_reason"] == "undecodable"
    replayed = dlq("replay", str(letter["id"]))
    assert "1 dead letter(s) replayed" in replayed.stdout, replayed.stdout + replayed.stderr
    # the projector gets it again (and, still undecodable, dead-letters it again)
    again = wait_for(lambda: len(m := mine()) == 2 and m, timeout=60, what="the replayed letter")
    assert [r["replayed_at"] is not None for r in sorted(again, key=lambda r: r["id"])] == [True, False]


def test_a_broker_killed_and_restarted_with_jobs_queued_ends_every_job(
    app: CarpriceApp, stack: Stack, registry, tmp_path: Path, unique: str,  # type: ignore[no-untyped-def]
    car: dict[str, Any],
) -> None:
    """With its own broker (Tansu: memory storage, so the restart loses every message)."""
    from devstack import services
    from infra.settings import Settings

    home = tmp_path / "home"
    settings = Settings(CARPRICE_HOME=str(home), DATABASE_URL=stack.database_url)  # type: ignore[call-arg]
    services.up(settings)
    try:
        _, bootstrap = services.endpoints(settings)
        env = {**os.environ, "DATABASE_URL": stack.database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": f"t{unique}",
               "KAFKA_PARTITIONS": "4", "INFERENCE_BATCH_MS": "10", "RELAY_CHECK_SECONDS": "1"}
        procs = Processes(env, tmp_path)
        try:
            procs.start("relay")
            users = [_user(app, f"{unique}-{i}", 100) for i in range(4)]
            jobs = [app.request_prediction(u, "linear_regression", car).job_id for u in users]
            wait_for(lambda: _rows(stack.database_url, "SELECT 1 FROM relay_position WHERE name = %s "
                                   "AND position >= %s", f"t{unique}.events", app.head_position()),
                     what="the jobs published")
            broker = services.State(home).load()["kafka"]
            os.kill(broker.pid, 9)  # SIGKILL, with every job still queued
            wait_for(lambda: not services.pid_alive(broker.pid), timeout=10, what="the broker gone")
            jobs += [app.request_prediction(u, "linear_regression", car).job_id for u in users]
            services.up(settings)  # on the same port
            procs.start("consume", "inference")
            wait_for(lambda: all(app.job(j).ended for j in jobs), timeout=180,
                     what="every job to end after the broker restart")
            assert all(app.job(j).status == "finished" for j in jobs)
            for u in users:
                assert app.balance(u).balance == 100 - 2 * app.catalog.offer("linear_regression").price
        finally:
            procs.stop_all()
    finally:
        services.down(settings)
