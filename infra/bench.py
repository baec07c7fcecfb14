"""Benchmarks with a command anyone can run (`carprice bench ...`); never asserted in tests."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from commands.app import CarpriceApp
from infra.settings import REPO_ROOT
from model_registry.features import load_dataset


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latency samples in milliseconds."""
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2),
            "max": round(max(samples_ms), 2)}


def sample_car() -> dict[str, Any]:
    """A real car from the dataset, as the API receives it."""
    x, _ = load_dataset(REPO_ROOT / "data")
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[0].to_dict().items()}


def _run_threads(threads: int, seconds: float, work: Callable[[int], object]) -> tuple[int, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            work(i)
            latencies[i].append((time.perf_counter() - t0) * 1000)

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    flat = [x for per in latencies for x in per]
    return len(flat), flat


def bench_write(app: CarpriceApp, thread_counts: list[int], seconds: float,
                model: str = "linear_regression") -> dict[str, Any]:
    """request_prediction commands/s and latency per thread count, one wallet per thread."""
    car = sample_car()
    run_id = uuid4().hex[:8]
    results: list[dict[str, Any]] = []
    for threads in thread_counts:
        users: list[UUID] = []
        for i in range(threads):
            acc = app.sign_up("Bench", f"bench-{run_id}-{threads}-{i}@example.com", "bench-password")
            app.deposit(acc.user_id, 1_000_000)
            users.append(acc.user_id)
        count, lat = _run_threads(
            threads, seconds, lambda i: app.request_prediction(users[i], model, car)  # noqa: B023
        )
        results.append({"threads": threads, "commands": count, "seconds": seconds,
                        "commands_per_s": round(count / seconds, 1),
                        "latency_ms": percentiles(lat)})
    return {"benchmark": "write", "command": "request_prediction", "model": model,
            "results": results}
