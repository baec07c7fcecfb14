"""Shared fixtures: real services started by the project's own code, and trained models."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from infra.settings import Settings
from tests import REPO_ROOT


@dataclass
class Stack:
    """The addresses of the services a test run talks to."""

    database_url: str
    kafka_bootstrap: str
    kafka_impl: str
    settings: Settings
    template: str  # a migrated database that new ones are copied from


def service_home(prefix: str) -> Path:
    """A home for services started by the tests, outside pytest's temporary root: a new pytest
    session (a developer's, alongside) resets that root to mode 0700, and the embedded
    PostgreSQL, which runs as its own user, would lose access to its data."""
    return Path(tempfile.mkdtemp(prefix=f"carprice-{prefix}-"))


@pytest.fixture(scope="session")
def shared_stack() -> Iterator[Stack]:
    """PostgreSQL and a broker for the whole run (external ones when the env names them), with
    a migrated template database that each test's own database is copied from."""
    import migrations
    from devstack import services
    from infra.kafka_client import wait_ready

    home = service_home("tests")
    found = Settings(CARPRICE_HOME=str(home))  # type: ignore[call-arg]
    services.up(found)
    try:
        db, kafka = services.endpoints(found)
        wait_ready(kafka)
        migrations.upgrade(db)  # as `carprice migrate` would: the processes only check it
        settings = found.model_copy(update={"database_url": db, "kafka_bootstrap_servers": kafka})
        with migrations.scratch_database(db, "template") as template:
            yield Stack(db, kafka, settings.kafka_impl, settings, urlsplit(template).path[1:])
    finally:
        services.down(found)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def stack(shared_stack: Stack) -> Iterator[Stack]:
    """The run's services, with a database of this test's own (an event store and read tables
    that hold only what this test wrote): a relay started by the test publishes this test's
    events, not the whole run's."""
    import migrations

    with migrations.scratch_database(shared_stack.database_url, "test",
                                     template=shared_stack.template) as url:
        yield Stack(url, shared_stack.kafka_bootstrap, shared_stack.kafka_impl,
                    shared_stack.settings.model_copy(update={"database_url": url}),
                    shared_stack.template)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The three models trained quickly (2-fold CV), in a registry of this run: a copy of the
    one trained from this code (tests.trained: trained once, kept between runs)."""
    from model_registry.store import Registry
    from tests.trained import trained_registry

    root = tmp_path_factory.mktemp("models")
    shutil.copytree(trained_registry(), root, dirs_exist_ok=True)
    return Registry(root)


def write_side(stack: Stack, registry, **settings: str):  # type: ignore[no-untyped-def]
    """A CarpriceApp on the test stack's PostgreSQL, with `registry` as its catalogue."""
    from commands.application import CarpriceApp
    from model_registry.catalog import RegistryCatalog

    return CarpriceApp.from_settings(stack.settings.model_copy(update=settings),
                                     RegistryCatalog(registry))


@pytest.fixture
def app(stack: Stack, registry):  # type: ignore[no-untyped-def]
    """The write side on the test stack's PostgreSQL, with the test registry as catalogue."""
    application = write_side(stack, registry)
    yield application
    application.close()


@pytest.fixture
def procs(stack: Stack, registry, tmp_path: Path, unique: str,  # type: ignore[no-untyped-def]
          request: pytest.FixtureRequest):
    """Processes of this test, on topics of their own (prefix t<unique>)."""
    from tests.procs import Processes

    env = {**os.environ, "DATABASE_URL": stack.database_url,
           "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": f"t{unique}",
           "KAFKA_PARTITIONS": "4", "INFERENCE_BATCH_MS": "10"}
    ps = Processes(env, tmp_path)
    yield ps
    ps.stop_all()
    ps.report_to(request.node)


@pytest.fixture
def read_db(stack: Stack, unique: str) -> Iterator[str]:
    """A conninfo whose connections see a schema of this test's own, with the read tables."""
    from psycopg.conninfo import make_conninfo

    from projections.schema import STATE_TABLES, copy_tables, read_tables

    schema = f"t_{unique}"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = make_conninfo(stack.database_url, options=f"-c search_path={schema}")
    with psycopg.connect(url, autocommit=True) as conn:
        copy_tables(conn, (*read_tables(), *STATE_TABLES), source_schema="public")
    try:
        yield url
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def car() -> dict[str, Any]:
    """One real car of the dataset, as the API receives it."""
    from tests.cars import car as nth

    return nth(0)


@pytest.fixture
def unique() -> str:
    """A short id that keeps this test's emails, topics and groups apart from others'."""
    return uuid.uuid4().hex[:10]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the item, so fixtures can see that their test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def pytest_report_header(config: pytest.Config) -> str:
    return f"carprice: KAFKA_IMPL={os.environ.get('KAFKA_IMPL', 'apache')}"


__all__ = ["REPO_ROOT", "Path", "Stack"]
