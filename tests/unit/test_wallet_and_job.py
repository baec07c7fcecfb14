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


def test_a_reservation_never_takes_the_balance_below_zero() -> None:
    w = _wallet(30)
    w.reserve(uuid4(), 25, "gradient_boosting", "1")
    with pytest.raises(InsufficientCredits) as info:
        w.reserve(uuid4(), 10, "linear_regression", "1")
    assert (info.value.balance, info.value.price) == (5, 10)
    assert "10" in str(info.value) and "5" in str(info.value)
    assert (w.balance, w.reserved) == (5, 25)


def test_a_hold_is_reserved_once_then_captured_or_released_once() -> None:
    w = _wallet(100)
    done, failed = uuid4(), uuid4()
    w.reserve(done, 40, "random_forest", "1")
    w.reserve(failed, 25, "gradient_boosting", "1")
    with pytest.raises(AlreadyCharged):
        w.reserve(done, 40, "random_forest", "1")
    assert (w.balance, w.reserved) == (35, 65)
    assert w.capture(done) is True
    assert w.capture(done) is False and w.release(done, "late failure") is False
    assert w.release(failed, "model error") is True
    assert w.release(failed, "model error") is False and w.capture(failed) is False
    assert (w.balance, w.reserved) == (60, 0)
    with pytest.raises(NotCharged):
        w.release(uuid4(), "never reserved")


def test_a_capture_can_give_back_an_undelivered_surcharge() -> None:
    w = _wallet(100)
    job = uuid4()
    w.reserve(job, 35, "gradient_boosting", "1")
    assert w.capture(job, release=10, reason="explanation failed") is True
    assert (w.balance, w.reserved) == (75, 0)
    kinds = [type(e).__name__ for e in w.collect_events()]
    assert kinds[-2:] == ["Captured", "Released"]
    with pytest.raises(InvalidAmount):
        w2 = _wallet(50)
        j2 = uuid4()
        w2.reserve(j2, 10, "m", "1")
        w2.capture(j2, release=10)


def test_an_older_charged_job_is_refunded_not_released() -> None:
    w = _wallet(100)
    job = uuid4()
    w._charged(user_id=w.user_id, job_id=job, amount=40, model_name="m", model_version="1")
    assert w.capture(job) is False  # paid at submit: nothing to capture
    assert w.release(job, "model error") is True
    assert w.release(job, "model error") is False
    assert w.balance == 100 and [type(e).__name__ for e in w.collect_events()][-1] == "Refunded"


def test_promotional_credits_are_spent_first_and_expire_once() -> None:
    from datetime import UTC, datetime, timedelta

    w = _wallet(100)
    soon = datetime.now(UTC) + timedelta(hours=1)
    assert w.grant("g1", 30, soon, "welcome") is True
    assert w.grant("g1", 30, soon, "welcome") is False  # one grant id grants once
    assert (w.balance, w.promotional) == (130, 30)
    job = uuid4()
    w.reserve(job, 25, "gradient_boosting", "1")  # all from the grant
    assert (w.balance, w.promotional, w.reserved) == (105, 5, 25)
    w.reserve(uuid4(), 10, "linear_regression", "1")  # 5 from the grant, 5 paid
    assert (w.balance, w.promotional) == (95, 0)
    later = soon + timedelta(seconds=1)
    assert w.expire_grants(later) == 1 and w.expire_grants(later) == 0
    # the job fails after its grant expired: what it held of the grant is gone with it
    assert w.release(job, "model error") is True
    assert (w.balance, w.promotional) == (95, 0)
    released = [e for e in w.collect_events() if type(e).__name__ == "Released"][-1]
    assert (released.amount, released.forfeited) == (25, 25)  # type: ignore[attr-defined]
    with pytest.raises(InvalidAmount):
        w.grant("g2", 5, datetime.now(UTC) - timedelta(seconds=1), "in the past")


def test_a_released_hold_goes_back_to_a_running_grant() -> None:
    from datetime import UTC, datetime, timedelta

    w = _wallet(10)
    w.grant("g", 20, datetime.now(UTC) + timedelta(days=30), "promo")
    job = uuid4()
    w.reserve(job, 25, "gradient_boosting", "1")
    assert (w.balance, w.promotional) == (5, 0)
    w.release(job, "model error")
    assert (w.balance, w.promotional, w.reserved) == (30, 20, 0)


def test_top_up_to_deposits_the_difference_and_never_lowers() -> None:
    w = _wallet(50)
    assert w.top_up_to(100) is True and w.balance == 100
    assert w.top_up_to(100) is False and w.balance == 100
    with pytest.raises(BalanceDecrease, match="below your balance of 100"):
        w.top_up_to(20)


def test_replaying_the_events_rebuilds_the_same_wallet() -> None:
    from datetime import UTC, datetime, timedelta

    w = _wallet(70)
    older = uuid4()
    w._charged(user_id=w.user_id, job_id=older, amount=40, model_name="m", model_version="1")
    w.release(older, "x")
    w.grant("g", 15, datetime.now(UTC) + timedelta(days=1), "promo")
    held, kept, partly = uuid4(), uuid4(), uuid4()
    w.reserve(held, 10, "m", "1")
    w.reserve(kept, 20, "m", "1")
    w.reserve(partly, 30, "m", "1")
    w.capture(kept)
    w.capture(partly, release=5, reason="explanation failed")
    copy = None
    for event in w.collect_events():
        copy = event.mutate(copy)
    assert copy is not None
    assert (copy.balance, copy.reserved, copy.promotional, copy.holds, copy.grants) == \
        (w.balance, w.reserved, w.promotional, w.holds, w.grants) == (30, 10, 0, w.holds, w.grants)
    assert set(copy.holds) == {held}


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


def test_a_copied_wallet_changes_and_saves_apart_from_its_original() -> None:
    """The repository hands out copies of cached wallets: what a command does to its copy
    (holds, grants, events not yet saved) must never show in the cached original."""
    from copy import deepcopy

    w = _wallet(100)
    job = uuid4()
    w.reserve(job, 30, "linear_regression", "1")
    clone = deepcopy(w)
    clone.deposit(5)
    clone.reserve(uuid4(), 10, "linear_regression", "1")
    assert len(clone.collect_events()) == len(w.collect_events()) + 2
    assert (w.balance, len(w.holds), w.version) == (70, 1, 3)
    assert (clone.balance, len(clone.holds), clone.version) == (65, 2, 5)
    assert clone.holds[job] == w.holds[job] and clone.holds[job] is not w.holds[job]
