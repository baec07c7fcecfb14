"""The rules of wallets and jobs, on the aggregates alone."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import (
    AlreadyCharged,
    BalanceDecrease,
    InsufficientCredits,
    InvalidAmount,
    JobAlreadyFinished,
    NotCharged,
)
from domain.job import PredictionJob
from domain.wallet import MAX_DEPOSIT, Wallet


def _wallet(balance: int = 0) -> Wallet:
    w = Wallet(user_id=uuid4())
    if balance:
        w.deposit(balance)
    return w


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", True, None, MAX_DEPOSIT + 1, 10**30])
def test_deposit_rejects_anything_but_a_bounded_positive_integer(amount: object) -> None:
    w = _wallet(10)
    with pytest.raises(InvalidAmount):
        w.deposit(amount)  # type: ignore[arg-type]
    assert w.balance == 10


def test_deposit_with_a_used_key_credits_once() -> None:
    w = _wallet()
    assert w.deposit(50, "key-1") is True
    assert w.deposit(50, "key-1") is False
    assert w.balance == 50


def test_charge_never_takes_the_balance_below_zero() -> None:
    w = _wallet(30)
    w.charge(uuid4(), 25, "gradient_boosting", "1")
    with pytest.raises(InsufficientCredits) as info:
        w.charge(uuid4(), 10, "linear_regression", "1")
    assert (info.value.balance, info.value.price) == (5, 10)
    assert "10" in str(info.value) and "5" in str(info.value)
    assert w.balance == 5


def test_a_job_is_charged_once_and_refunded_once_for_the_charged_amount() -> None:
    w = _wallet(100)
    job = uuid4()
    w.charge(job, 40, "random_forest", "1")
    with pytest.raises(AlreadyCharged):
        w.charge(job, 40, "random_forest", "1")
    assert w.refund(job, "model error") is True
    assert w.refund(job, "model error") is False
    assert w.balance == 100
    with pytest.raises(NotCharged):
        w.refund(uuid4(), "never charged")


def test_top_up_to_deposits_the_difference_and_never_lowers() -> None:
    w = _wallet(50)
    assert w.top_up_to(100) is True and w.balance == 100
    assert w.top_up_to(100) is False and w.balance == 100
    with pytest.raises(BalanceDecrease, match="below your balance of 100"):
        w.top_up_to(20)


def test_replaying_the_events_rebuilds_the_same_wallet() -> None:
    w = _wallet(70)
    job = uuid4()
    w.charge(job, 40, "m", "1")
    w.refund(job, "x")
    w.charge(uuid4(), 10, "m", "1")
    copy = None
    for event in w.collect_events():
        copy = event.mutate(copy)
    assert copy is not None and copy.balance == w.balance == 60


def _job() -> PredictionJob:
    return PredictionJob(job_id=uuid4(), user_id=uuid4(), model_name="m", model_version="1",
                         features={}, price=10)


def test_job_terminal_states_are_final() -> None:
    job = _job()
    assert job.complete(12345.0, "1", {"predict_ms": 1.0}) is True
    assert job.complete(99.0, "1", {}) is False and job.result == 12345.0
    with pytest.raises(JobAlreadyFinished):
        job.fail("too late")
    failed = _job()
    assert failed.fail("bad input") is True and failed.fail("again") is False
    with pytest.raises(JobAlreadyFinished):
        failed.complete(1.0, "1", {})
    assert failed.status == "failed" and failed.error == "bad input"
