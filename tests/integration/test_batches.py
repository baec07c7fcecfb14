"""Fleet batches through the real pipeline: exact money under an inference SIGKILL."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

import psycopg
import pytest

from commands.application import CarpriceApp
from commands.audit import replay_ledger
from domain.events import JOB_COMPLETED
from domain.ids import wallet_id_for
from infra import positions
from model_registry.features import load_dataset
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _batch(db: str, batch_id: UUID) -> tuple[Any, ...] | None:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute("SELECT rows, done, failed, finished_at FROM batches WHERE "
                            "batch_id = %s", (batch_id,)).fetchone()


def test_a_batch_survives_an_inference_sigkill_charged_exactly_with_each_row_once(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    x, _ = load_dataset()
    cars = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for _, row in x.head(120).iterrows()]
    price = app.catalog.offer("linear_regression").price
    # the test's topic holds only its own events, so its rows come first to inference
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        positions.advance(conn, f"t{unique}.events", app.head_position())
    user = app.sign_up("Fleet", f"fleet-{unique}@example.com", "password-123").user_id
    app.deposit(user, 120 * price + 7)
    accepted = app.request_batch(user, "linear_regression", cars, "json")
    assert (app.balance(user).balance, app.balance(user).reserved) == (7, 120 * price)  # held
    procs.start("relay")
    procs.start("consume", "projections")
    # killed after recording outcomes, before committing their offsets
    crashing = procs.start("consume", "inference", crash_at=("inference.before_commit",),
                           extra_env={"INFERENCE_BATCH_SIZE": "50"})
    wait_for(lambda: crashing.popen.poll() is not None, timeout=90, what="the SIGKILL crash point")
    assert "crash point inference.before_commit" in crashing.text()
    rows = {str(uuid5(accepted.batch_id, str(i))) for i in range(120)}  # the rows' job ids
    before_kill = [e.aggregate_id for e in app.published_after(0, 100_000)
                   if e.type == JOB_COMPLETED and e.aggregate_id in rows]
    # outcomes were recorded, their offsets not committed (a commit comes at most once a
    # second: on a quick broker every row may be recorded by then); what follows gets their
    # requests again and must record nothing twice
    assert before_kill
    procs.start("consume", "inference")
    done = wait_for(lambda: (b := _batch(stack.database_url, accepted.batch_id)) and b[3] and b,
                    timeout=120, what="every row of the batch ended")
    assert done[:3] == (120, 120, 0)
    completed = [e.aggregate_id for e in app.published_after(0, 100_000)
                 if e.type == JOB_COMPLETED and e.aggregate_id in rows]
    assert sorted(completed) == sorted(rows)  # every row completed, and only once
    kinds = [type(e).__name__ for e in app.events.get(wallet_id_for(user))]
    assert "Refunded" not in kinds and "Released" not in kinds
    captured = [e.job_id for e in replay_ledger(app, user).entries if e.type == "Captured"]
    assert sorted(map(str, captured)) == sorted(rows)  # every hold captured, once
    ledger = replay_ledger(app, user)
    assert (app.balance(user).balance, app.balance(user).reserved) == (7, 0) == (ledger.balance,
                                                                                ledger.reserved)
    # the read side agrees, reserved included
    wait_for(lambda: _balance(stack.database_url, user) == (7, 0, 0), timeout=60,
             what="the balances row to show the captured holds")


def _balance(db: str, user: UUID) -> tuple[Any, ...] | None:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute("SELECT balance, reserved, promotional FROM balances WHERE user_id = %s",
                            (user,)).fetchone()


def test_a_batch_of_6000_cars_is_recorded_in_one_transaction(app: CarpriceApp, unique: str) -> None:
    # 12,001 events and megabytes in one INSERT: psycopg's pipeline mode waited for ever here
    x, _ = load_dataset()
    car = {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[3].items()}
    price = app.catalog.offer("linear_regression").price
    user = app.sign_up("Fleet", f"big-{unique}@example.com", "password-123").user_id
    app.deposit(user, 6000 * price)
    head = app.head_position()
    accepted = app.request_batch(user, "linear_regression", [car] * 6000, "json")
    assert accepted.rows == 6000 and app.balance(user).balance == 0
    positions = [n.id for n in app.recorder.select_notifications(start=head + 1, limit=20_000)]
    assert positions == list(range(head + 1, head + 12_002))  # one save: consecutive, none lost
    assert replay_ledger(app, user).balance == 0
