"""`carprice bench e2e`: request recorded -> result visible in prediction_history.

Starts a stack of its own (relay, reaper, 2 inference consumers, projector; topics and groups
of its own), waits until it is idle, then runs N closed-loop clients: each submits a job
through the commands and waits until its row shows it finished.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench.common import percentiles, sample_car, write_side
from bench.stack import BenchStack, wait_idle
from infra.settings import Settings


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
    app = write_side(settings, db, pool_size=clients + 4)
    stack = BenchStack(settings, db, kafka, with_api=False,
                       extra_env={"INFERENCE_BATCH_MS": str(settings.inference_batch_ms)})
    watcher = _Watcher(db)
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        car = sample_car(settings)
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
        return {"benchmark": "e2e", "broker": settings.kafka_impl, "clients": clients,
                "seconds": round(elapsed, 1), "jobs_finished": len(latencies),
                "jobs_per_s": round(len(latencies) / elapsed, 1), "timed_out": lost,
                "latency_ms": percentiles(latencies), "logs": str(stack.logs)}
    finally:
        watcher.stopping.set()
        stack.stop()
        app.close()
