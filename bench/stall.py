"""`carprice bench stall`: the API while the read side is stalled (the projector paused).

N clients each top up, read their balance and submit a job, in a loop, while a prober reads
/healthz every 50 ms; the projector is SIGSTOPped for the whole run. Latency per request
kind, the share of reads answered `stale: true`, and any 5xx.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import requests

from bench.common import percentiles, write_side
from bench.stack import BenchStack, wait_idle
from infra.settings import Settings
from model_registry.features import load_dataset


def bench_stall(settings: Settings, db: str, kafka: str, clients: int, seconds: float) -> dict[str, Any]:
    """Latencies with the projector paused; figures, never pass/fail."""
    stack = BenchStack(settings, db, kafka, api_workers=1)
    app = write_side(settings, db)
    x, _ = load_dataset(settings.data_dir)
    car = {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[0].to_dict().items()}
    latency: dict[str, list[float]] = {"POST /balance": [], "GET /balance": [], "POST /predict": [],
                                       "GET /healthz": []}
    statuses: Counter[int] = Counter()
    stale: Counter[bool] = Counter()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        sessions = []
        for i in range(clients):
            s = requests.Session()
            email = f"stall-{stack.prefix}-{i}@example.com"
            s.post(f"{stack.api}/sign_up", json={"name": "S", "email": email, "password": "stall-pass-1"},
                   timeout=30)
            token = s.post(f"{stack.api}/sign_in", json={"email": email, "password": "stall-pass-1"},
                           timeout=30).json()["token"]
            s.headers["Authorization"] = f"Bearer {token}"
            s.post(f"{stack.api}/balance", json={"amount": 100_000}, timeout=30)
            sessions.append(s)

        def timed(kind: str, call: Callable[[], requests.Response]) -> requests.Response:
            t0 = time.perf_counter()
            r = call()
            with lock:
                latency[kind].append((time.perf_counter() - t0) * 1000)
                statuses[r.status_code] += 1
            return r

        def client(s: requests.Session) -> None:
            while not stop.is_set():
                timed("POST /balance", lambda: s.post(f"{stack.api}/balance", json={"amount": 1}, timeout=30))
                r = timed("GET /balance", lambda: s.get(f"{stack.api}/balance", timeout=30))
                with lock:
                    stale[bool(r.ok and r.json().get("stale"))] += 1
                timed("POST /predict", lambda: s.post(f"{stack.api}/predict", timeout=30, json={
                    "model_name": "linear_regression", "data": car}))

        def health() -> None:
            while not stop.wait(0.05):
                timed("GET /healthz", lambda: requests.get(f"{stack.base}/healthz", timeout=30))

        stack.pause("projector")
        threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
        threads.append(threading.Thread(target=health))
        started = time.monotonic()
        for t in threads:
            t.start()
        stop.wait(seconds)
        stop.set()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - started
        stack.resume("projector")
        return {"benchmark": "stall", "clients": clients, "seconds": round(elapsed, 1),
                "projector": "paused (SIGSTOP) for the whole run",
                "latency_ms": {k: percentiles(v) for k, v in latency.items()},
                "requests": {k: len(v) for k, v in latency.items()},
                "deposits_per_s": round(len(latency["POST /balance"]) / elapsed, 1),
                "reads_stale": stale[True], "reads_fresh": stale[False],
                "http_5xx": sum(n for c, n in statuses.items() if c >= 500),
                "statuses": dict(statuses), "logs": str(stack.logs)}
    finally:
        stop.set()
        stack.stop()
        app.close()
