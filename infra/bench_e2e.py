"""`carprice bench e2e`: request recorded -> result visible in prediction_history.

Starts its own relay, 2 inference consumers and a projector (topic prefix
`bench`), waits until they are idle, then runs N closed-loop clients: each
submits a job through the commands and waits until its row shows finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg

from infra.bench import percentiles, sample_car
from infra.bootstrap import build_app
from infra.settings import REPO_ROOT, Settings

PREFIX = "bench"


def children(settings: Settings, db: str, kafka: str, logs: Path,
             extra: list[list[str]] | None = None) -> tuple[list[subprocess.Popen[bytes]], Settings]:
    """The pipeline's processes, and the settings they run with (topic prefix, group names)."""
    # fresh groups per run: Tansu can keep a group of a previous run in a rebalance loop
    suffix = f"-{uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": db, "KAFKA_BOOTSTRAP_SERVERS": kafka,
           "KAFKA_TOPIC_PREFIX": PREFIX, "MODEL_REGISTRY_DIR": str(settings.registry_dir),
           "INFERENCE_BATCH_MS": str(settings.inference_batch_ms), "KAFKA_GROUP_SUFFIX": suffix}
    theirs = Settings(KAFKA_TOPIC_PREFIX=PREFIX, KAFKA_GROUP_SUFFIX=suffix)  # type: ignore[call-arg]
    procs = []
    for i, args in enumerate([["relay"], ["consume", "inference"], ["consume", "inference"],
                              ["consume", "projections"], *(extra or [])]):
        log = open(logs / f"{i}-{'-'.join(args)}.log", "wb")  # noqa: SIM115 - lives with the child
        procs.append(subprocess.Popen([sys.executable, "-m", "infra.cli", *args], env=env,  # noqa: S603
                                      stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT))
        if args == ["consume", "inference"]:
            # Tansu's group coordinator can loop in rebalances when two members join at
            # the same instant; joining one after the other avoids it.
            time.sleep(6)
    return procs, theirs


def wait_idle(conn: psycopg.Connection[Any], head: Any, kafka: str, settings: Settings,
              timeout: float = 600) -> None:
    """Until relay, consumer groups and projector are all at the store's head, quiet for 3 s.

    (After a broker restart the relay republishes the whole store: a benchmark started
    before that settles would measure the catch-up, not the pipeline.)
    """
    from infra import positions
    from infra.kafka_client import EndOffsets, LagProbe
    from projections.state import lag as projection_lag

    probe = LagProbe(kafka)
    ends = EndOffsets(kafka, settings.events_topic)
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    try:
        while time.monotonic() < deadline:
            now_head = head() or 0
            try:
                relay = positions.position(conn, settings.events_topic)
                behind = projection_lag(conn, settings.events_topic, ends(), now_head - relay)
                lag = sum(probe.lag(settings.group(g), settings.events_topic)
                          for g in ("inference", "projections"))
            except Exception:  # noqa: BLE001 - tables, topics or groups not formed yet
                relay, behind, lag = 0, {"?": 1}, -1
            caught_up = not any(behind.values()) and lag == 0 and relay >= now_head
            if now_head != last:
                last, since = now_head, time.monotonic()
            if caught_up and time.monotonic() - since > 3:
                return
            time.sleep(0.5)
    finally:
        probe.close()
        ends.close()
    raise TimeoutError("the pipeline did not become idle")


class _Watcher(threading.Thread):
    """One poller for every client: which pending jobs are finished in prediction_history."""

    def __init__(self, db: str) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.pending: dict[UUID, threading.Event] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def expect(self, job_id: UUID) -> threading.Event:
        done = threading.Event()
        with self.lock:
            self.pending[job_id] = done
        return done

    def run(self) -> None:
        with psycopg.connect(self.db, autocommit=True) as conn:
            while not self.stopping.is_set():
                with self.lock:
                    ids = list(self.pending)
                if ids:
                    rows = conn.execute("SELECT job_id FROM prediction_history WHERE job_id = "
                                        "ANY(%s) AND status IN ('finished', 'failed')",
                                        (ids,)).fetchall()
                    with self.lock:
                        for (job_id,) in rows:
                            self.pending.pop(job_id).set()
                time.sleep(0.002)


def bench_e2e(settings: Settings, db: str, kafka: str, clients: int, seconds: float,
              model: str = "linear_regression") -> dict[str, Any]:
    """Throughput and latency of the whole pipeline at `clients` concurrent clients."""
    app = build_app(Settings(DB_POOL_SIZE=clients + 4), url=db)  # type: ignore[call-arg]
    logs = Path(tempfile.mkdtemp(prefix="carprice-bench-"))
    procs, theirs = children(settings, db, kafka, logs)
    watcher = _Watcher(db)
    try:
        with psycopg.connect(db, autocommit=True) as conn:
            time.sleep(2)
            wait_idle(conn, app.head_position, kafka, theirs)
        car = sample_car()
        run = uuid4().hex[:8]
        users = []
        for i in range(clients):
            user = app.sign_up("Bench", f"e2e-{run}-{i}@example.com", "bench-password").user_id
            app.deposit(user, 1_000_000)
            users.append(user)
        watcher.start()
        latencies: list[float] = []
        lost = 0
        stop = time.monotonic() + seconds

        def client(user: UUID) -> None:
            nonlocal lost
            while time.monotonic() < stop:
                accepted = app.request_prediction(user, model, car)
                recorded = time.perf_counter()
                if watcher.expect(accepted.job_id).wait(30):
                    latencies.append((time.perf_counter() - recorded) * 1000)
                else:
                    lost += 1

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        return {"benchmark": "e2e", "broker": settings.kafka_impl if not
                settings.kafka_bootstrap_servers else "external", "clients": clients,
                "seconds": round(elapsed, 1), "jobs_finished": len(latencies),
                "jobs_per_s": round(len(latencies) / elapsed, 1), "timed_out": lost,
                "latency_ms": percentiles(latencies), "logs": str(logs)}
    finally:
        watcher.stopping.set()
        stop_children(procs)
        app.close()


def stop_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child, then SIGKILL what lingers."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
