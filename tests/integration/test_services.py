"""The services the project starts are real and usable, and `down` cleans up after `up`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import psycopg
import pytest

from devstack import services
from infra.kafka_client import consumer, ensure_topics, producer
from infra.settings import Settings
from tests.conftest import Stack

pytestmark = pytest.mark.postgres


def test_postgres_round_trip(stack: Stack, unique: str) -> None:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE t_{unique} (id int primary key, name text)")
        conn.execute(f"INSERT INTO t_{unique} VALUES (1, 'giulia')")
        row = conn.execute(f"SELECT name FROM t_{unique} WHERE id = 1").fetchone()
    assert row == ("giulia",)
    given = os.environ.get("DATABASE_URL")  # an external database is used as given
    assert stack.database_url == given if given else "@127.0.0.1:" in stack.database_url


@pytest.mark.kafka
def test_keyed_produce_consume_through_a_consumer_group(stack: Stack, unique: str) -> None:
    topic = f"smoke-{unique}"
    ensure_topics(stack.kafka_bootstrap, [topic], partitions=4)
    prod = producer(stack.kafka_bootstrap)
    sent = [(f"user-{i % 3}", f"event-{i}") for i in range(30)]
    for key, value in sent:
        prod.send(topic, key=key.encode(), value=value.encode())
    prod.flush()
    prod.close()

    cons = consumer(stack.kafka_bootstrap, f"group-{unique}", topic)
    got: list[tuple[str, str, int]] = []
    deadline = time.monotonic() + 60
    while len(got) < len(sent) and time.monotonic() < deadline:
        for _tp, records in cons.poll(timeout_ms=500).items():
            got += [(r.key.decode(), r.value.decode(), r.partition) for r in records]
    cons.commit()
    cons.close()

    assert sorted((k, v) for k, v, _ in got) == sorted(sent)
    # one key, one partition, and its order kept
    for key in {k for k, _ in sent}:
        mine = [(v, p) for k, v, p in got if k == key]
        assert len({p for _, p in mine}) == 1
        assert [v for v, _ in mine] == [v for k, v in sent if k == key]


def test_status_and_down_handle_a_stale_record(tmp_path: Path) -> None:
    settings = Settings(CARPRICE_HOME=str(tmp_path), DATABASE_URL="postgresql://u:secret@h/db")  # type: ignore[call-arg]
    (tmp_path / "services.json").write_text(json.dumps({
        "kafka": {"name": "kafka", "kind": "tansu", "pid": 999_999_9, "port": 1, "address": "x"},
    }))
    state = {s.name: s for s in services.status(settings)}
    assert not state["kafka"].running and "stale" in state["kafka"].note
    assert state["postgres"].address == "postgresql://u:***@h/db"  # never print a password
    assert any("stale" in m for m in services.down(settings))
    assert json.loads((tmp_path / "services.json").read_text()) == {}


def test_up_twice_reuses_and_down_stops_by_pid(tmp_path: Path) -> None:
    settings = Settings(CARPRICE_HOME=str(tmp_path), DATABASE_URL="postgresql://external/db")  # type: ignore[call-arg]
    first = {s.name: s for s in services.up(settings)}
    try:
        second = {s.name: s for s in services.up(settings)}
        assert second["kafka"].pid == first["kafka"].pid
        assert second["kafka"].note == "already running"
    finally:
        services.down(settings)
    assert not services.pid_alive(first["kafka"].pid)
    assert services.status(settings)[1].running is False
