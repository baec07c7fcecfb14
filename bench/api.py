"""`carprice bench api`: the SEED_API flow from N concurrent HTTP clients.

Each client signs up, tops up, then submits jobs and polls GET /predict/{id}
(every 20 ms, as a UI would) until it shows finished. Latency is from POST
/predict to the first GET that shows the job finished.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import psycopg
import requests

from bench.common import percentiles, sample_car, write_side
from bench.stack import BenchStack, wait_idle
from infra.settings import Settings

POLL_SECONDS = 0.02


def _client(base: str, car: dict[str, Any], stop: float, latencies: list[float],
            errors: list[str]) -> None:
    s = requests.Session()
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    s.post(f"{base}/sign_up", json={"name": "Bench", "email": email, "password": "bench-pass-1"})
    token = s.post(f"{base}/sign_in", json={"email": email, "password": "bench-pass-1"}).json()["token"]
    s.headers["Authorization"] = f"Bearer {token}"
    s.post(f"{base}/balance", json={"amount": 1_000_000})
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        r = s.post(f"{base}/predict", json={"model_name": "linear_regression", "data": car})
        if r.status_code != 200:
            errors.append(f"POST {r.status_code} {r.text[:120]}")
            continue
        job = r.json()["job_id"]
        while True:
            status = s.get(f"{base}/predict/{job}").json().get("status")
            if status in ("finished", "failed"):
                latencies.append((time.perf_counter() - t0) * 1000)
                break
            if time.perf_counter() - t0 > 30:
                errors.append("timeout")
                break
            time.sleep(POLL_SECONDS)


def bench_api(settings: Settings, db: str, kafka: str, clients: int, seconds: float,
              workers: int = 2) -> dict[str, Any]:
    """Jobs/s and POST->finished latency through the API with `clients` concurrent clients."""
    stack = BenchStack(settings, db, kafka, api_workers=workers)
    app = write_side(settings, db)
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        car = sample_car(settings)
        latencies: list[float] = []
        errors: list[str] = []
        started = time.monotonic()
        stop = started + seconds
        threads = [threading.Thread(target=_client, args=(stack.api, car, stop, latencies, errors))
                   for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        return {"benchmark": "api", "clients": clients, "api_workers": workers,
                "seconds": round(elapsed, 1), "jobs_finished": len(latencies),
                "jobs_per_s": round(len(latencies) / elapsed, 1), "errors": len(errors),
                "error_samples": sorted(set(errors))[:5],
                "latency_ms": percentiles(latencies), "logs": str(stack.logs)}
    finally:
        stack.stop()
        app.close()
