"""`carprice bench batch`: one fleet batch of N cars through the pipeline.

Starts a stack of its own (relay, reaper, 2 inference consumers, projector), submits one
batch through the commands (validation, the charge and every row's job in one transaction)
and times it until the batch's read row says every row ended.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

import psycopg

from bench.common import sample_car, write_side
from bench.stack import BenchStack, wait_idle
from infra.settings import Settings


def bench_batch(settings: Settings, db: str, kafka: str, rows: int,
                model: str = "linear_regression") -> dict[str, Any]:
    """Submit time, pipeline time and rows/s of one batch of `rows` cars."""
    app = write_side(settings, db, pool_size=4)
    stack = BenchStack(settings, db, kafka, with_api=False)
    try:
        stack.up()
        with psycopg.connect(db, autocommit=True) as conn:
            wait_idle(conn, app.head_position, kafka, stack.theirs)
        car = sample_car(settings)
        cars = [{**car, "horsepower": 70 + i % 150} for i in range(rows)]
        user = app.sign_up("Bench", f"batch-{uuid4().hex[:8]}@example.com", "bench-password").user_id
        price = app.catalog.offer(model).price
        app.deposit(user, rows * price)
        started = time.perf_counter()
        accepted = app.request_batch(user, model, cars, "json")
        submitted = time.perf_counter()
        first: float | None = None
        with psycopg.connect(db, autocommit=True) as conn:
            while True:
                row = conn.execute("SELECT done, failed FROM batches WHERE batch_id = %s",
                                   (accepted.batch_id,)).fetchone()
                if row and first is None and row[0] + row[1] > 0:
                    first = time.perf_counter()
                if row and row[0] + row[1] >= rows:
                    break
                if time.perf_counter() - started > 1800:
                    raise TimeoutError(f"the batch did not end in 30 min: {row}")
                time.sleep(0.1)
        ended = time.perf_counter()
        left = app.balance(user).balance
        return {"benchmark": "batch", "broker": settings.kafka_impl, "rows": rows, "model": model,
                "submit_s": round(submitted - started, 2),
                "first_row_s": round((first or ended) - started, 2),
                "total_s": round(ended - started, 2),
                "rows_per_s": round(rows / (ended - started), 1),
                "pipeline_rows_per_s": round(rows / (ended - submitted), 1),
                "done": row[0], "failed": row[1], "balance_left": left,
                "charged_exactly": left == row[1] * price, "logs": str(stack.logs)}
    finally:
        stack.stop()
        app.close()
