"""Operator commands against real services: `carprice init` (compose's one-shot service), audit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from kafka import KafkaConsumer

import migrations
from infra.schema import REQUIRED_REVISION
from tests import REPO_ROOT
from tests.conftest import Stack, write_side

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def _fresh_database(stack: Stack, name: str) -> str:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return stack.database_url.rsplit("/", 1)[0] + f"/{name}"


def _carprice(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_init_prepares_an_empty_deployment_and_can_run_again(
    stack: Stack, registry, unique: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    db = _fresh_database(stack, f"init_{unique}")
    models = tmp_path / "models"
    shutil.copytree(registry.root, models)
    env = {**os.environ, "DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": f"init-{unique}", "KAFKA_PARTITIONS": "3",
           "MODEL_REGISTRY_DIR": str(models), "CARPRICE_MODE": "production", "LOG_FORMAT": "json"}
    for _ in range(2):  # idempotent: a restarted deployment runs it again
        done = _carprice(env, "init")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "init: done" in done.stderr and "models already registered" in done.stdout
    with psycopg.connect(db, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert {"balances", "prediction_history", "running_jobs", "projection_offsets",
            "projection_faults", "relay_position", "reaper_open_jobs", "dead_letters",
            "api_idempotency", "api_throttle"} <= tables
    assert {"carprice_events", "carprice_snapshots", "alembic_version"} <= tables, tables
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            migrations.head(),)
    probe = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    try:
        for topic in (f"init-{unique}.events", f"init-{unique}.events.dlq"):
            assert len(probe.partitions_for_topic(topic) or ()) == 3, topic
    finally:
        probe.close()


def test_audit_all_replays_every_wallet_and_flags_a_balance_that_differs(
    stack: Stack, registry, unique: str  # type: ignore[no-untyped-def]
) -> None:
    db = _fresh_database(stack, f"audit_{unique}")
    migrations.upgrade(db)
    app = write_side(stack, registry, database_url=db)
    try:
        users = [app.sign_up("A", f"audit-{i}-{unique}@example.com", "password-123").user_id
                 for i in range(3)]
        for i, user in enumerate(users):
            app.deposit(user, 10 * (i + 1))
    finally:
        app.close()
    env = {**os.environ, "DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap}
    assert _carprice(env, "projections", "rebuild", "balances").returncode == 0
    clean = _carprice(env, "audit", "--all", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert sorted(r["replayed_balance"] for r in json.loads(clean.stdout)) == [10, 20, 30]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE balances SET balance = balance + 5 WHERE user_id = %s", (users[1],))
    tampered = _carprice(env, "audit", "--all")
    assert tampered.returncode == 1
    assert "3 wallets replayed; 1 differ" in " ".join(tampered.stdout.split())


def test_processes_refuse_a_database_that_was_not_migrated(stack: Stack, unique: str) -> None:
    db = _fresh_database(stack, f"old_{unique}")
    env = {**os.environ, "DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "KAFKA_TOPIC_PREFIX": f"old-{unique}"}
    for command in (["relay"], ["reaper"], ["consume", "projections"], ["audit", "--all"]):
        refused = _carprice(env, *command)
        assert refused.returncode != 0, command
        assert "run `carprice migrate`" in refused.stdout + refused.stderr, command
    migrated = _carprice(env, "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"schema at revision {REQUIRED_REVISION}" in migrated.stdout
    assert _carprice(env, "audit", "--all").returncode == 0  # an empty store: nothing differs
