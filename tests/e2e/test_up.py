"""`carprice up` started as a user starts it: installed (not from the checkout) into a fresh
virtualenv, run in an empty directory; the whole stack, supervised, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from devstack.proc import free_port
from tests import REPO_ROOT
from tests.conftest import service_home
from tests.e2e.old_client import OldClient
from tests.procs import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Up:
    """A running `carprice up` and what it printed."""

    popen: subprocess.Popen[bytes]
    log: Path
    home: Path
    api: str
    env: dict[str, str]
    command: list[str]
    cwd: Path
    site: Path  # the installed copy's site-packages

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def family(self) -> list[psutil.Process]:
        """The supervisor's descendants plus the database and broker it started."""
        procs = psutil.Process(self.popen.pid).children(recursive=True)
        services = json.loads((self.home / "services.json").read_text())
        for rec in services.values():
            if rec.get("pid"):
                service = psutil.Process(rec["pid"])
                procs += [service, *service.children(recursive=True)]
        return procs

    def child(self, word: str) -> psutil.Process:
        return next(p for p in psutil.Process(self.popen.pid).children()
                    if word in " ".join(p.cmdline()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(carprice, site-packages) of a copy installed from the source into a fresh venv.

    Only carprice is installed (no editable install, nothing of the checkout on its path); its
    dependencies are the project's own virtualenv's, named by a .pth file, so that nothing is
    downloaded.
    """
    base = tmp_path_factory.mktemp("installed")
    source = base / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".carprice", "build", "*.egg-info", "__pycache__", "test-output", "tests"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    deps = next(Path(p) for p in sys.path if p.endswith("site-packages") and ".venv" in p)
    (site / "carprice-dependencies.pth").write_text(f"{deps}\n")
    # built as `pip install .` builds it (an isolated build), installed into the new venv
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "-q", "--no-deps", str(source)], check=True, cwd=base)
    shutil.rmtree(source)  # the installed copy must not need its source
    return venv / "bin" / "carprice", site


@pytest.fixture(scope="module")
def up(installed: tuple[Path, Path]) -> Iterator[Up]:
    carprice, site = installed
    cwd = service_home("up")  # an empty directory: the state goes to ./.carprice
    log = cwd.parent / f"{cwd.name}.log"
    # a user's environment: nothing configured at all (so the default broker, Apache Kafka)
    env = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "CARPRICE_HOME", "MODEL_REGISTRY_DIR", "KAFKA_IMPL")}
    # but one repeat of the 5-fold CV, not five: the first start trains in a fifth of the time
    # (the default, 5x5, is tests/unit/test_model_registry.py's)
    env["CARPRICE_TRAIN_CV"] = "5x1"
    api_port, ui_port = free_port(), free_port()
    command = [str(carprice), "up", "--demo", "--api-port", str(api_port), "--ui-port", str(ui_port)]
    with open(log, "wb") as out:
        popen = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    running = Up(popen, log, cwd / ".carprice", f"http://127.0.0.1:{api_port}", env, [str(carprice)],
                 cwd, site)
    try:
        wait_for(lambda: "carprice is up" in running.text() or popen.poll() is not None, timeout=240,
                 what="carprice up to say it is up")
        assert popen.poll() is None, running.text()[-3000:]
        yield running
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(90)
            except subprocess.TimeoutExpired:
                popen.kill()
        shutil.rmtree(cwd, ignore_errors=True)


def _wait_done(client: OldClient, job_id: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(lambda: (j := client.job(job_id))["status"] in ("finished", "failed") and j,
                    timeout=timeout, what=f"job {job_id} to finish")


def _seed_flow(base: str, car: dict[str, Any]) -> tuple[str, str]:
    """Every SEED_API route as the old client uses it; returns (password, token)."""
    client = OldClient(base)
    email, password = f"up-{uuid.uuid4().hex[:8]}@example.com", f"pw-{uuid.uuid4().hex}"
    client.sign_up("Una", email, password)
    token = client.sign_in(email, password)["token"]
    assert client.top_up(100) == 100
    prices = {m["model_name"]: m["price"] for m in client.predictors()}
    assert set(prices) == {"linear_regression", "gradient_boosting", "random_forest"}
    job_id = client.predict("linear_regression", car)
    done = _wait_done(client, job_id)
    assert done["status"] == "finished" and done["result"] > 0
    # right after a projector crash the read side may lag (the group rebalances): it converges
    wait_for(lambda: client.balance() == 100 - prices["linear_regression"], timeout=60,
             what="the balance after the charge")
    assert client.history() == [job_id]
    return password, token


def test_it_prints_the_urls_and_a_working_demo_account(up: Up) -> None:
    text = up.text()
    assert f"API         {up.api}" in text and "dashboard   http://127.0.0.1:" in text
    line = next(x for x in text.splitlines() if "demo user" in x)
    email, password = line.split("demo user", 1)[1].split("(")[0].strip().split(" / ")
    client = OldClient(up.api)
    client.sign_in(email, password)
    assert client.balance() >= 1000
    ui = text.split("dashboard   ", 1)[1].split()[0]
    assert requests.get(ui, timeout=10).status_code == 200
    for name in ("relay", "reaper", "webhooks", "projector", "inference-1", "inference-2", "api", "ui"):
        wait_for(lambda n=name: f"\n{n:<11} | " in up.text(), timeout=60, what=f"output from {name}")


def test_the_state_is_in_the_working_directory_and_the_models_come_from_the_package(up: Up) -> None:
    assert (up.cwd / ".carprice" / "pg" / "PG_VERSION").exists()
    assert "CV: 5 folds x 1 repeats" in up.text()  # trained at the first start, from package data
    listed = subprocess.run([*up.command, "models", "list", "--json"], env=up.env, cwd=up.cwd,
                            capture_output=True, text=True, timeout=60)
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    assert set(models) == {"linear_regression", "gradient_boosting", "random_forest"}
    assert {(m["cv"]["n_splits"], m["cv"]["n_repeats"]) for m in models.values()} == {(5, 1)}
    assert max(m["metrics"]["r2"]["mean"] for m in models.values()) >= 0.92
    assert models["linear_regression"]["metrics"]["r2"]["mean"] >= 0.85
    by_quality = sorted(models.values(), key=lambda m: m["metrics"]["r2"]["mean"])
    assert [m["price"] for m in by_quality] == sorted(m["price"] for m in models.values())  # better: dearer
    again = subprocess.run([*up.command, "train", "--if-missing"], env=up.env, cwd=up.cwd,
                           capture_output=True, text=True, timeout=60)
    assert "already registered" in again.stdout
    assert not list(up.site.glob("**/.carprice"))  # nothing written next to the code
    installed = next(p for p in psutil.Process(up.popen.pid).children() if "relay" in p.cmdline())
    assert str(REPO_ROOT) not in " ".join(installed.cmdline()) and installed.cwd() == str(up.cwd)


def test_the_seed_flow_runs_and_no_secret_reaches_the_logs(up: Up, car: dict[str, Any]) -> None:
    password, token = _seed_flow(up.api, car)
    wait_for(lambda: "GET /api/v1/history 200" in up.text(), timeout=10, what="the last request logged")
    text = up.text()
    assert password not in text and token not in text


def test_a_second_up_says_one_is_running(up: Up) -> None:
    second = subprocess.run([*up.command, "up"], env=up.env, cwd=up.cwd,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "already running" in second.stdout and str(up.popen.pid) in second.stdout


def test_a_killed_child_is_restarted_and_the_flow_still_completes(up: Up, car: dict[str, Any]) -> None:
    for word in ("inference", "projections"):
        victim = up.child(word)
        victim.kill()
        victim.wait(10)
    wait_for(lambda: up.text().count("restarting ") >= 2, timeout=30, what="the restarts")
    assert "exited with code -9; restart #1" in up.text()
    _seed_flow(up.api, car)


def test_sigterm_stops_everything_and_leaves_no_process(up: Up) -> None:
    family = up.family()
    names = {" ".join(p.cmdline()) for p in family}
    assert len(family) >= 9, names  # 7 children, postgres, the broker
    up.popen.send_signal(signal.SIGTERM)
    assert up.popen.wait(90) == 0
    gone, alive = psutil.wait_procs(family, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert "every process stopped" in up.text()



def _published_and_head(home: Path) -> tuple[int, int]:
    """(records on carprice.events, the event store's head) of the services this home started."""
    import psycopg
    from kafka import KafkaConsumer, TopicPartition

    services = json.loads((home / "services.json").read_text())
    client = KafkaConsumer(bootstrap_servers=services["kafka"]["address"])
    try:
        parts = [TopicPartition("carprice.events", p)
                 for p in client.partitions_for_topic("carprice.events") or ()]
        published = sum(client.end_offsets(parts).values())
    finally:
        client.close()
    with psycopg.connect(services["postgres"]["address"], autocommit=True) as conn:
        row = conn.execute("SELECT max(notification_id) FROM carprice_events").fetchone()
    return published, int(row[0] if row and row[0] else 0)


def test_up_again_in_the_same_directory_publishes_nothing_the_broker_already_holds(
        up: Up, car: dict[str, Any]) -> None:
    """After the SIGTERM above: the default broker keeps its records on disk and the relay its
    position in PostgreSQL, so a second `carprice up` sends no event again: the topic holds
    each event of the store once (on Tansu 0.6's memory storage every restart lost them all,
    and the relay had to publish the whole store again)."""
    assert up.popen.poll() is not None  # stopped by the test above
    log = up.log.with_suffix(".again.log")
    with open(log, "wb") as out:
        again = subprocess.Popen(up.popen.args, env=up.env, stdout=out,  # noqa: S603 - our command
                                 stderr=subprocess.STDOUT, cwd=up.cwd)
    try:
        wait_for(lambda: "carprice is up" in log.read_text(errors="replace") or again.poll() is not None,
                 timeout=240, what="carprice up to start again")
        assert again.poll() is None, log.read_text(errors="replace")[-3000:]
        wait_for(lambda: "resuming after position" in log.read_text(errors="replace"), timeout=60,
                 what="the relay to resume")
        _seed_flow(up.api, car)  # new events, published once
        wait_for(lambda: (lambda p, h: p == h)(*_published_and_head(up.home)), timeout=30,
                 what="every event published")
        published, head = _published_and_head(up.home)
        assert published == head > 0
        assert "broker data lost" not in log.read_text(errors="replace")
    finally:
        again.send_signal(signal.SIGTERM)
        try:
            again.wait(90)
        except subprocess.TimeoutExpired:
            again.kill()
