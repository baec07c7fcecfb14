"""Shared fixtures: real services started by the project's own code, and trained models."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.settings import REPO_ROOT, Settings


@dataclass
class Stack:
    """The addresses of the services a test run talks to."""

    database_url: str
    kafka_bootstrap: str
    kafka_impl: str
    settings: Settings


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """PostgreSQL and a broker for the whole run (external ones when the env names them)."""
    from infra import services
    from infra.kafka_client import wait_ready

    home = tmp_path_factory.mktemp("carprice-home")
    settings = Settings(CARPRICE_HOME=str(home))  # type: ignore[call-arg]
    services.up(settings)
    try:
        db, kafka = services.endpoints(settings)
        wait_ready(kafka)
        yield Stack(db, kafka, settings.kafka_impl, settings)
    finally:
        services.down(settings)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The three models trained quickly (2-fold CV) into a registry of this run."""
    from model_registry.store import Registry
    from model_registry.training import train_all

    reg = Registry(tmp_path_factory.mktemp("models"))
    train_all(REPO_ROOT / "data", reg, n_splits=2, n_repeats=1)
    return reg


@pytest.fixture(scope="module")
def app(stack: Stack, registry):  # type: ignore[no-untyped-def]
    """The write side on the test stack's PostgreSQL, with the test registry as catalogue."""
    from infra.bootstrap import build_app

    application = build_app(stack.settings, registry=registry, url=stack.database_url)
    yield application
    application.close()


@pytest.fixture
def procs(stack: Stack, registry, tmp_path: Path, unique: str):  # type: ignore[no-untyped-def]
    """Processes of this test, on topics of their own (prefix t<unique>)."""
    from tests.procs import Processes

    env = {**os.environ, "DATABASE_URL": stack.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": f"t{unique}",
           "KAFKA_PARTITIONS": "4", "INFERENCE_BATCH_MS": "10"}
    ps = Processes(env, tmp_path)
    yield ps
    ps.stop_all()


@pytest.fixture
def read_db(stack: Stack, unique: str) -> Iterator[str]:
    """A conninfo whose connections see a schema of this test's own, with the read tables."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from projections.schema import create

    schema = f"t_{unique}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_conninfo(stack.database_url, options=f"-c search_path={schema}")
    with psycopg.connect(url, autocommit=True) as conn:
        create(conn)
    try:
        yield url
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def unique() -> str:
    """A short id that keeps this test's emails, topics and groups apart from others'."""
    return uuid.uuid4().hex[:10]


def pytest_report_header(config: pytest.Config) -> str:
    return f"carprice: KAFKA_IMPL={os.environ.get('KAFKA_IMPL', 'tansu')}"


DATA_DIR = REPO_ROOT / "data"
__all__ = ["DATA_DIR", "Path", "Stack"]
