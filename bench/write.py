"""Benchmarks with a command anyone can run (`carprice bench ...`); never asserted in tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from bench.common import percentiles, sample_car
from commands.application import CarpriceApp


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
