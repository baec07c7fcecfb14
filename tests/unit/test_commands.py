"""The Application's commands on the in-memory (POPO) event store."""

from __future__ import annotations

from uuid import uuid4

import pytest

from commands.app import CarpriceApp
from commands.audit import all_wallet_users, replay_ledger
from domain.errors import (
    EmailAlreadyRegistered,
    InsufficientCredits,
    InvalidCredentials,
    InvalidFeatures,
    InvalidUserData,
    JobAlreadyFinished,
    JobNotFound,
    UnknownModel,
)
from domain.events import USER_REGISTERED
from tests.fakes import CAR, FakeCatalog


@pytest.fixture
def app() -> CarpriceApp:
    return CarpriceApp(FakeCatalog())


def test_sign_up_normalises_the_email_and_registers_it_once(app: CarpriceApp) -> None:
    acc = app.sign_up(" John ", " John@Example.COM ", "correct horse")
    assert (acc.name, acc.email) == ("John", "john@example.com")
    with pytest.raises(EmailAlreadyRegistered):
        app.sign_up("Other", "JOHN@example.com", "another password")


def test_the_password_is_never_stored(app: CarpriceApp) -> None:
    app.sign_up("John", "john@example.com", "correct horse")
    stored = [n.state for n in app.recorder.select_notifications(start=1, limit=10,
                                                                 topics=[USER_REGISTERED])]
    assert stored and all(b"correct horse" not in s for s in stored)
    assert all(b"$argon2" in s for s in stored)


@pytest.mark.parametrize(("name", "email", "password"), [
    ("", "a@b.co", "password1"), ("A", "not-an-email", "password1"), ("A", "a@b.co", "short"),
])
def test_sign_up_refuses_bad_data(app: CarpriceApp, name: str, email: str, password: str) -> None:
    with pytest.raises(InvalidUserData):
        app.sign_up(name, email, password)


def test_authenticate_gives_one_error_for_unknown_email_and_wrong_password(app: CarpriceApp) -> None:
    app.sign_up("John", "john@example.com", "correct horse")
    assert app.authenticate("JOHN@example.com", "correct horse").name == "John"
    with pytest.raises(InvalidCredentials) as wrong:
        app.authenticate("john@example.com", "wrong horse")
    with pytest.raises(InvalidCredentials) as unknown:
        app.authenticate("nobody@example.com", "correct horse")
    assert str(wrong.value) == str(unknown.value) == "invalid email or password"


def test_prediction_charges_the_price_and_refuses_without_credits(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 45)
    accepted = app.request_prediction(user, "pricey", CAR)
    assert (accepted.price, accepted.balance, accepted.model_version) == (40, 5, "3")
    with pytest.raises(InsufficientCredits) as info:
        app.request_prediction(user, "cheap", CAR)
    assert "cheap costs 10 credits and your balance is 5" in str(info.value)
    assert app.balance(user).balance == 5


def test_invalid_requests_charge_nothing(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    with pytest.raises(UnknownModel, match="available: cheap, pricey"):
        app.request_prediction(user, "nope", CAR)
    with pytest.raises(InvalidFeatures):
        app.request_prediction(user, "cheap", {**CAR, "horsepower": "lots"})
    assert app.balance(user).balance == 100


def test_the_same_job_id_is_charged_once(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    job_id = uuid4()
    first = app.request_prediction(user, "cheap", CAR, job_id=job_id)
    again = app.request_prediction(user, "cheap", CAR, job_id=job_id)
    assert first.created and not again.created and again.job_id == job_id
    assert app.balance(user).balance == 90


def test_failed_job_is_refunded_once_and_completed_job_cannot_fail(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    failing = app.request_prediction(user, "pricey", CAR).job_id
    assert app.fail_prediction(failing, "model error") is True
    assert app.fail_prediction(failing, "model error") is False
    assert app.balance(user).balance == 100
    done = app.request_prediction(user, "pricey", CAR).job_id
    assert app.start_prediction(done) is True
    assert app.complete_prediction(done, 15000.0, "3") is True
    assert app.complete_prediction(done, 15000.0, "3") is False
    with pytest.raises(JobAlreadyFinished):
        app.fail_prediction(done, "too late")
    assert app.balance(user).balance == 60


def test_jobs_are_only_visible_to_their_owner(app: CarpriceApp) -> None:
    owner = app.sign_up("A", "a@example.com", "password-a").user_id
    other = app.sign_up("B", "b@example.com", "password-b").user_id
    app.deposit(owner, 10)
    job_id = app.request_prediction(owner, "cheap", CAR).job_id
    assert app.job(job_id, owner).status == "queued"
    with pytest.raises(JobNotFound):
        app.job(job_id, other)
    with pytest.raises(JobNotFound):
        app.job(uuid4())


def test_ledger_replays_every_change_with_a_running_balance(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 50)
    job = app.request_prediction(user, "pricey", CAR).job_id
    app.fail_prediction(job, "boom")
    app.request_prediction(user, "cheap", CAR)
    ledger = replay_ledger(app, user)
    assert [(e.type, e.amount, e.balance) for e in ledger.entries] == [
        ("Opened", 0, 0), ("Deposited", 50, 50), ("Charged", -40, 10), ("Refunded", 40, 50),
        ("Charged", -10, 40),
    ]
    assert ledger.balance == app.balance(user).balance == 40
    as_of = replay_ledger(app, user, as_of=ledger.entries[2].time)
    assert as_of.balance == 10
    assert list(all_wallet_users(app)) == [user]
