"""A whole carprice stack for one benchmark run: its own topics and groups, its processes under
the benchmark's control (kill, restart, pause), the API over HTTP, and a clean stop."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import psutil
import psycopg
import requests
from psycopg.rows import TupleRow

from devstack.proc import free_port
from infra.settings import Settings


@dataclass
class Child:
    """One process of the stack."""

    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    kills: int = 0


@dataclass
class BenchStack:
    """relay, reaper, webhooks, projector, 2 inference consumers and an API with `api_workers`
    workers (and, when asked, a second API for reads and the dashboard)."""

    settings: Settings
    db: str
    kafka: str
    api_workers: int = 2
    with_api: bool = True
    with_ui: bool = False
    split_reads: bool = False  # a second API process, for reads (the cost model tells them apart)
    inference: int = 2  # inference consumers (as `carprice up` runs)
    extra_env: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"bench{uuid4().hex[:6]}")
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carprice-bench-")))
    children: dict[str, Child] = field(default_factory=dict)
    # restart a child that exits (after `restart_after` s), as `carprice up` and compose do
    supervise: bool = False
    restart_after: float = 1.0

    def __post_init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # fresh groups per run: Tansu can keep a group of a previous run in a rebalance loop
        self.group_suffix = f"-{uuid4().hex[:8]}"
        self.env = {**os.environ, "DATABASE_URL": self.db, "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
                    "KAFKA_TOPIC_PREFIX": self.prefix, "KAFKA_GROUP_SUFFIX": self.group_suffix,
                    "MODEL_REGISTRY_DIR": str(self.settings.registry_dir),
                    "SIGNUPS_PER_CLIENT": "1000000", "SIGNINS_PER_CLIENT": "1000000",
                    "LOG_FORMAT": "console", **self.extra_env}
        self.theirs = Settings(KAFKA_TOPIC_PREFIX=self.prefix,  # type: ignore[call-arg]
                               KAFKA_GROUP_SUFFIX=self.group_suffix)
        plan = [("relay", ["relay"]), ("reaper", ["reaper"]), ("webhooks", ["webhooks"]),
                ("projector", ["consume", "projections"]),
                *((f"inference-{i}", ["consume", "inference"]) for i in range(1, self.inference + 1))]
        if self.with_api:
            plan.append(("api", ["api", "--port", str(self.port), "--workers", str(self.api_workers)]))
        if self.split_reads:
            self.read_port = free_port()
            plan.append(("api-reads", ["api", "--port", str(self.read_port), "--workers",
                                       str(self.api_workers)]))
        if self.with_ui:
            plan.append(("ui", ["ui", "--port", str(free_port()), "--api-url", self.base]))
        for name, args in plan:
            self.children[name] = Child(name, args, self.logs / f"{name}.log")

    @property
    def api(self) -> str:
        """The API's /api/v1 base URL."""
        return f"{self.base}/api/v1"

    @property
    def read_api(self) -> str:
        """The /api/v1 base URL of the reads' API process (with split_reads)."""
        return f"http://127.0.0.1:{self.read_port}/api/v1"

    def start(self, name: str) -> None:
        """Start (or start again) one child."""
        child = self.children[name]
        env = self.env
        with open(child.log, "ab") as out:
            child.popen = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "cli.main", *child.args], env=env, stdout=out,  # our CLI
                stderr=subprocess.STDOUT, start_new_session=True)

    def up(self, timeout: float = 600) -> None:
        """Start everything; return once the API answers and both groups have partitions."""
        self._stopping = threading.Event()
        for name in self.children:
            self.start(name)
        if self.with_api:
            self._wait(self._api_up, 60)
        self._wait(lambda: all("partitions assigned" in self.text(n) for n in self.children
                               if n == "projector" or n.startswith("inference-")), timeout)
        if self.supervise:
            threading.Thread(target=self._supervise, name="bench-supervisor", daemon=True).start()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for child in self.children.values():
                if child.popen is not None and child.popen.poll() is not None:
                    if self._stopping.wait(self.restart_after):
                        return
                    if child.popen.poll() is not None:
                        with open(child.log, "ab") as out:
                            out.write(f"[bench] exited with {child.popen.returncode}; "
                                      "restarting\n".encode())
                        self.start(child.name)

    def text(self, name: str) -> str:
        """A child's log so far."""
        path = self.children[name].log
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> None:
        """SIGKILL a child, as a crash would."""
        child = self.children[name]
        if child.popen is not None and child.popen.poll() is None:
            child.popen.kill()
            child.popen.wait(10)
        child.kills += 1

    def kill_api_worker(self) -> int | None:
        """SIGKILL one API worker process (its uvicorn parent starts another); its pid."""
        api = self.children["api"].popen
        workers = psutil.Process(api.pid).children() if api is not None else []
        if not workers:
            return None
        workers[0].kill()
        self.children["api"].kills += 1
        return int(workers[0].pid)

    def pause(self, name: str) -> None:
        """SIGSTOP a child (a hung process)."""
        popen = self.children[name].popen
        if popen is not None:
            os.kill(popen.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT after pause()."""
        popen = self.children[name].popen
        if popen is not None:
            os.kill(popen.pid, signal.SIGCONT)

    def pids(self) -> dict[str, list[int]]:
        """Every process of the stack by child name (the API's workers included)."""
        out: dict[str, list[int]] = {}
        for name, child in self.children.items():
            if child.popen is not None and child.popen.poll() is None:
                proc = psutil.Process(child.popen.pid)
                out[name] = [proc.pid, *(c.pid for c in proc.children(recursive=True))]
        return out

    def stop(self) -> None:
        """SIGTERM every child, newest first; SIGKILL what lingers."""
        getattr(self, "_stopping", threading.Event()).set()
        live = [c.popen for c in reversed(list(self.children.values()))
                if c.popen is not None and c.popen.poll() is None]
        for p in live:
            os.kill(p.pid, signal.SIGCONT)
            p.send_signal(signal.SIGTERM)
        for p in live:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self._drop_topics()

    def _drop_topics(self) -> None:
        """Delete this run's topics: every run republishes the whole store to topics of its
        own, and a broker that keeps them in memory (Tansu) grew slower run after run."""
        from infra.kafka_client import admin

        try:
            client = admin(self.kafka)
            try:
                mine = [t for t in client.list_topics() if t.startswith(f"{self.prefix}.")]
                if mine:
                    client.delete_topics(mine)
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - the figures are taken; only memory is at stake
            logging.getLogger("carprice.bench").warning(
                "could not delete the benchmark's topics %s.*: %s", self.prefix, exc)

    def _api_up(self) -> bool:
        try:
            return requests.get(f"{self.base}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    @staticmethod
    def _wait(check: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise TimeoutError(f"the benchmark stack did not come up in {timeout:.0f} s")


def wait_idle(conn: psycopg.Connection[TupleRow], head: Callable[[], int], kafka: str, settings: Settings,
              timeout: float = 600) -> None:
    """Until relay, inference and the projector (by their own positions) are all at the
    store's head, quiet for 3 s.

    (After a broker restart the relay republishes the whole store: a benchmark started
    before that settles would measure the catch-up, not the pipeline.)
    """
    from infra import positions
    from infra.kafka_client import EndOffsets
    from infra.leases import lag as consumer_lag
    from projections.state import lag as projection_lag

    ends = EndOffsets(kafka, settings.events_topic)
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    try:
        while time.monotonic() < deadline:
            now_head = head() or 0
            try:
                relay = positions.position(conn, settings.events_topic)
                behind = projection_lag(conn, settings.events_topic, ends(), now_head - relay)
                lag = consumer_lag(conn, settings.group("inference"), settings.events_topic, ends())
            except Exception:  # noqa: BLE001 - tables, topics or groups not formed yet
                relay, behind, lag = 0, {"?": 1}, -1
            caught_up = not any(behind.values()) and lag == 0 and relay >= now_head
            if now_head != last:
                last, since = now_head, time.monotonic()
            if caught_up and time.monotonic() - since > 3:
                return
            time.sleep(0.5)
    finally:
        ends.close()
    raise TimeoutError("the pipeline did not become idle")
