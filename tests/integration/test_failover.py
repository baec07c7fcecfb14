"""Broker failover on a real 3-node Apache Kafka cluster (KRaft, replication 3, min ISR 2).

Runs in the Apache Kafka pass of CI (`make test-kafka-apache`, marker `cluster`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from commands.application import CarpriceApp
from commands.audit import replay_ledger
from devstack import services
from domain.events import JOB_COMPLETED, WALLET_CAPTURED, WALLET_RESERVED
from domain.ids import wallet_id_for
from infra.kafka_client import admin
from infra.settings import Settings
from tests import cars
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]


def _leader_of_most(bootstrap: str, topic: str) -> int:
    client = admin(bootstrap)
    try:
        (described,) = client.describe_topics([topic])
    finally:
        client.close()
    leaders = Counter(p["leader_id"] for p in described["partitions"])
    return leaders.most_common(1)[0][0]


def test_killing_the_leading_broker_under_load_loses_no_job_and_charges_none_twice(
    app: CarpriceApp, stack: Stack, registry, tmp_path: Path, unique: str,  # type: ignore[no-untyped-def]
) -> None:
    car = cars.car(33)
    settings = Settings(CARPRICE_HOME=str(tmp_path / "cluster"), DATABASE_URL=stack.database_url,  # type: ignore[call-arg]
                        KAFKA_IMPL="apache-cluster")
    services.up(settings)
    topic = f"t{unique}.events"
    try:
        _, bootstrap = services.endpoints(settings)
        env = {**os.environ, "DATABASE_URL": stack.database_url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": f"t{unique}",
               "KAFKA_PARTITIONS": "6", "KAFKA_REPLICATION_FACTOR": "3", "INFERENCE_BATCH_MS": "10",
               "RELAY_CHECK_SECONDS": "1"}
        procs = Processes(env, tmp_path)
        try:
            procs.start("relay")
            consumers = [procs.start("consume", "projections"), procs.start("consume", "inference")]
            wait_for(lambda: all("partitions assigned: t" in c.text() for c in consumers), timeout=120,
                     what="both groups to have their partitions")
            price = app.catalog.offer("linear_regression").price
            users = [app.sign_up("Failover", f"fo-{unique}-{i}@example.com", "password-123").user_id
                     for i in range(6)]
            for u in users:
                app.deposit(u, 100_000)
            jobs: list[tuple[UUID, UUID]] = []
            stop = threading.Event()

            def load() -> None:
                i = 0
                while not stop.is_set():
                    user = users[i % len(users)]
                    jobs.append((user, app.request_prediction(user, "linear_regression", car).job_id))
                    i += 1
                    time.sleep(0.02)

            writer = threading.Thread(target=load)
            writer.start()
            try:
                wait_for(lambda: len(jobs) > 60, timeout=60, what="load")
                victim = _leader_of_most(bootstrap, topic)
                record = services.State(settings.home).load()["kafka" if victim == 1 else f"kafka-{victim}"]
                os.kill(record.pid, 9)  # the broker leading most partitions in use, mid-stream
                killed_at = len(jobs)
                wait_for(lambda: len(jobs) > killed_at + 150, timeout=120, what="load on two brokers")
                services.restart_node(settings, victim)
                restarted_at = len(jobs)
                wait_for(lambda: len(jobs) > restarted_at + 60, timeout=60, what="load after the restart")
            finally:
                stop.set()
                writer.join()
            wait_for(lambda: all(app.job(j).ended for _, j in jobs), timeout=240, interval=1,
                     what="every job to end")
            assert all(app.job(j).status == "finished" for _, j in jobs), "no job may be lost"
            for user in users:
                mine = [j for u, j in jobs if u == user]
                wallet = list(app.events.get(wallet_id_for(user)))
                held = [e.job_id for e in wallet if type(e).TOPIC == WALLET_RESERVED]  # type: ignore[attr-defined]
                captured = [e.job_id for e in wallet if type(e).TOPIC == WALLET_CAPTURED]  # type: ignore[attr-defined]
                assert sorted(held) == sorted(mine)  # each job held once
                assert sorted(captured) == sorted(mine)  # and captured once
                assert app.balance(user).reserved == 0
                assert app.balance(user).balance == 100_000 - len(mine) * price
                assert replay_ledger(app, user).balance == app.balance(user).balance
            for _, j in jobs[:: max(1, len(jobs) // 50)]:
                assert [type(e).TOPIC for e in app.events.get(j)].count(JOB_COMPLETED) == 1  # type: ignore[attr-defined]

            def audited() -> bool:  # the projection agrees with every replayed wallet
                with psycopg.connect(stack.database_url, autocommit=True) as conn:
                    shown = dict(conn.execute("SELECT user_id, balance FROM balances WHERE user_id = "
                                              "ANY(%s)", (users,)).fetchall())
                return shown == {u: replay_ledger(app, u).balance for u in users}

            wait_for(audited, timeout=120, interval=1, what="the balances projection to agree")
            print(f"failover: {len(jobs)} jobs, broker {victim} killed after {killed_at} "  # noqa: T201
                  f"and restarted after {restarted_at}; every job finished, charged once")
        finally:
            procs.stop_all()
    finally:
        services.down(settings)
