"""`carprice bench idle`: what the whole stack costs when nobody uses it.

Starts every process `carprice up` runs (relay, reaper, projector, 2 inference consumers,
API, dashboard) on topics of its own, waits until the pipeline is idle, then reads the CPU
time of each process (and of PostgreSQL and the broker) over N seconds.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.common import write_side
from bench.cpu import Reading, cores, service_pids
from bench.stack import BenchStack, wait_idle
from infra.settings import Settings


def bench_idle(settings: Settings, db: str, kafka: str, seconds: float = 30.0,
               settle: float = 5.0) -> dict[str, Any]:
    """Per process: CPU as % of one core; in all: % of the machine. Figures, never pass/fail."""
    stack = BenchStack(settings, db, kafka, api_workers=1, with_ui=True)
    app = write_side(settings, db)
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        app.close()
        time.sleep(settle)  # the consumers go to sleep on the wake-up signal
        groups = {**{n: p[:1] for n, p in stack.pids().items()}, **service_pids(settings.home)}
        before = Reading.take(groups)
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        spent = Reading.take(groups).since(before)
        per_core = {n: round(100 * s / elapsed, 2) for n, s in sorted(spent.items())}
        return {"benchmark": "idle", "seconds": round(elapsed, 1), "cores": cores(),
                "broker": settings.kafka_impl, "cpu_percent_of_one_core": per_core,
                "machine_percent": round(100 * sum(spent.values()) / (elapsed * cores()), 2),
                "measured": sorted(groups), "logs": str(stack.logs)}
    finally:
        stack.stop()
        app.close()
