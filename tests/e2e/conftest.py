"""The whole stack as a user meets it: relay, inference, projector and the API over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devstack.proc import free_port
from tests.conftest import Stack
from tests.procs import Processes, wait_for


@dataclass
class Api:
    """The running API's base URL and its processes."""

    base: str
    procs: Processes
    database_url: str  # the stack's own database (its own event store and read tables)

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1{path}"


def own_database(stack: Stack, prefix: str) -> AbstractContextManager[str]:
    """A database of its own on the test server, migrated, dropped afterwards: a stack on it
    relays, reaps and projects only its own events, whatever ran before it."""
    import migrations

    return migrations.scratch_database(stack.database_url, prefix)


def start_api(procs: Processes, port: int | None = None) -> str:
    """An API process of the stack, once it answers /readyz; its base URL."""
    port = port or free_port()
    procs.start("api", "--port", str(port))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{base}/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(up, timeout=60, what=f"the API on port {port} to answer /readyz")
    return base


# Package scope: one stack for every e2e test, on a database of its own, so that no test
# elsewhere depends on running before or after it.
@pytest.fixture(scope="package")
def api(shared_stack: Stack, registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    with own_database(shared_stack, "e2e") as database_url:
        yield from _api(shared_stack, registry, tmp_path_factory, database_url)


def _api(stack: Stack, registry, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
         database_url: str, prefix: str = "e2e", **extra: str) -> Iterator[Api]:
    """A whole stack on `database_url` and the topics of `prefix` (`extra`: more settings)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url,
           "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
           "MODEL_REGISTRY_DIR": str(registry.root), "KAFKA_TOPIC_PREFIX": prefix,
           "CARPRICE_HOME": str(stack.settings.home), "INFERENCE_BATCH_MS": "10",
           # every e2e test signs its users up from 127.0.0.1
           "SIGNUPS_PER_CLIENT": "100000", "SIGNINS_PER_CLIENT": "100000",
           # webhook retries within a test's patience
           "WEBHOOK_BACKOFF_SECONDS": "0.3", "WEBHOOK_MAX_ATTEMPTS": "4",
           # the tests' receivers listen on loopback: allowed explicitly, as an operator would
           "WEBHOOK_ALLOWED_TARGETS": "127.0.0.1",
           # the e2e stack prices a few hundred cars, not the thousand a drift verdict wants
           "DRIFT_MIN_CARS": "3",
           # measured afresh by each test (a Models page seen a moment before must not answer)
           "DRIFT_CACHE_SECONDS": "0", **extra}
    procs = Processes(env, tmp_path_factory.mktemp(f"{prefix}-logs"))
    procs.start("relay")
    procs.start("reaper")
    procs.start("webhooks")
    consumers = [procs.start("consume", "projections"), procs.start("consume", "inference")]
    base = start_api(procs, port)
    wait_for(lambda: all(f"partitions assigned: {prefix}" in c.text() for c in consumers), timeout=60,
             what="both consumer groups to have their partitions")
    try:
        yield Api(base, procs, database_url)
    finally:
        procs.stop_all()


@pytest.fixture(autouse=True)
def _children_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test that used the stack shows the last lines of every child's log."""
    yield
    if "api" in request.fixturenames:
        request.getfixturevalue("api").procs.report_to(request.node)


__all__ = ["Api", "Path"]
