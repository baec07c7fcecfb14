"""The Application's commands on the in-memory (POPO) event store."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from commands.application import CarpriceApp
from commands.audit import all_wallet_users, replay_ledger
from commands.results import Outcome
from domain.errors import (
    EmailAlreadyRegistered,
    ExplanationUnavailable,
    InsufficientCredits,
    InvalidBatch,
    InvalidCredentials,
    InvalidFeatures,
    InvalidUserData,
    JobAlreadyFinished,
    JobNotFound,
    UnknownModel,
)
from domain.events import USER_REGISTERED
from domain.ids import wallet_id_for
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
    assert all(b"$argon2" not in s for s in stored)  # even its hash is sealed with the user's key
    assert app.authenticate("john@example.com", "correct horse").name == "John"


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
    assert [(e.type, e.amount, e.balance, e.reserved) for e in ledger.entries] == [
        ("Opened", 0, 0, 0), ("Deposited", 50, 50, 0), ("Reserved", -40, 10, 40),
        ("Released", 40, 50, 0), ("Reserved", -10, 40, 10),
    ]
    assert ledger.balance == app.balance(user).balance == 40
    assert ledger.reserved == app.balance(user).reserved == 10
    as_of = replay_ledger(app, user, as_of=ledger.entries[2].time)
    assert as_of.balance == 10
    assert list(all_wallet_users(app)) == [user]


def test_every_job_gets_a_deadline_settable_within_bounds(app: CarpriceApp) -> None:
    from datetime import UTC, datetime, timedelta

    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    now = datetime.now(UTC)
    default = app.request_prediction(user, "cheap", CAR)
    short = app.request_prediction(user, "cheap", CAR, deadline_seconds=30)
    clamped = app.request_prediction(user, "cheap", CAR, deadline_seconds=1)
    assert default.deadline and short.deadline and clamped.deadline
    assert timedelta(seconds=295) < default.deadline - now < timedelta(seconds=305)
    assert timedelta(seconds=25) < short.deadline - now < timedelta(seconds=35)
    assert clamped.deadline - now >= timedelta(seconds=4)
    assert app.job(short.job_id).deadline == short.deadline


def test_an_expired_job_is_failed_and_refunded_once(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    job = app.request_prediction(user, "pricey", CAR).job_id
    assert app.expire_prediction(job) is True
    assert app.expire_prediction(job) is False
    failed = app.job(job)
    assert failed.status == "failed" and failed.code == "expired" and "deadline" in (failed.error or "")
    assert (app.balance(user).balance, app.balance(user).reserved) == (100, 0)
    releases = [e for e in replay_ledger(app, user).entries if e.type == "Released"]
    assert len(releases) == 1


def test_a_late_completion_and_the_reaper_never_both_win(app: CarpriceApp) -> None:
    from commands.results import Outcome

    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    expired_first = app.request_prediction(user, "cheap", CAR).job_id
    completed_first = app.request_prediction(user, "cheap", CAR).job_id
    assert app.expire_prediction(expired_first)
    assert app.record_outcomes([Outcome(expired_first, result=15000.0, model_version="1")]) == 0
    assert app.record_outcomes([Outcome(completed_first, result=15000.0, model_version="1")]) == 1
    assert app.expire_prediction(completed_first) is False
    assert (app.job(expired_first).status, app.job(expired_first).result) == ("failed", None)
    assert (app.job(completed_first).status, app.job(completed_first).result) == ("finished", 15000.0)
    assert app.balance(user).balance == 90  # one refunded, one paid for


def test_the_race_of_completions_and_expiries_under_threads_settles_each_job_once(app: CarpriceApp) -> None:
    import threading

    from commands.results import Outcome

    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 1000)
    jobs = [app.request_prediction(user, "cheap", CAR).job_id for _ in range(60)]
    barrier = threading.Barrier(2)

    def complete() -> None:
        barrier.wait()
        for j in jobs:
            app.record_outcomes([Outcome(j, result=1.0, model_version="1")])

    def expire() -> None:
        barrier.wait()
        for j in reversed(jobs):
            app.expire_prediction(j)

    threads = [threading.Thread(target=complete), threading.Thread(target=expire)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = replay_ledger(app, user).entries
    released = {e.job_id for e in entries if e.type == "Released"}
    captured = {e.job_id for e in entries if e.type == "Captured"}
    for j in jobs:
        job = app.job(j)
        assert job.status in ("finished", "failed")
        assert (job.status == "failed") == (j in released)  # released exactly when it failed
        assert (job.status == "finished") == (j in captured)  # captured exactly when it finished
    assert sum(1 for e in entries if e.type in ("Released", "Captured")) == len(jobs)
    assert app.balance(user).balance == 1000 - 10 * sum(app.job(j).status == "finished" for j in jobs)
    assert app.balance(user).reserved == 0


def test_a_dead_lettered_request_is_failed_and_refunded(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 50)
    job = app.request_prediction(user, "pricey", CAR).job_id
    assert app.dead_letter_prediction(job, "ValueError: bad") is True
    assert app.dead_letter_prediction(job, "ValueError: bad") is False
    assert app.job(job).code == "dead_lettered" and app.balance(user).balance == 50


def test_unseen_categories_are_accepted_with_a_warning(app: CarpriceApp) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 50)
    accepted = app.request_prediction(user, "cheap", {**CAR, "brand": "tesla", "model": ""})
    assert accepted.warnings and "brand" in accepted.warnings[0]
    assert app.job(accepted.job_id).features["brand"] == "tesla"


@pytest.mark.parametrize("field", ["name", "email", "password"])
def test_sign_up_refuses_unprintable_text_naming_the_field(app: CarpriceApp, field: str) -> None:
    data = {"name": "John", "email": "john@example.com", "password": "correct horse"}
    data[field] = data[field][:3] + "\x00" + data[field][3:]
    with pytest.raises(InvalidUserData, match=field):
        app.sign_up(**data)


def test_an_explanation_is_charged_with_the_job_and_only_its_surcharge_refunded_on_failure(
    app: CarpriceApp,
) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    with pytest.raises(ExplanationUnavailable, match="explain"):
        app.request_prediction(user, "cheap", CAR, explain=True)  # this version cannot explain
    assert app.balance(user).balance == 100
    explained = app.request_prediction(user, "pricey", CAR, explain=True)
    unexplained = app.request_prediction(user, "pricey", CAR, explain=True)
    assert explained.price == unexplained.price == 45 and app.balance(user).balance == 10
    why = {"base": 12000.0, "contributions": [{"feature": "horsepower", "value": 111,
                                                "effect": 3000.0}]}
    assert app.record_outcomes([
        Outcome(explained.job_id, 15000.0, "3", interval={"low": 13000.0, "high": 17000.0,
                                                          "level": 0.8}, explanation=why),
        Outcome(unexplained.job_id, 15000.0, "3", explain_error="ValueError: no"),
    ]) == 2
    assert app.balance(user).balance == 15  # the failed explanation's 5 credits came back
    assert app.job(explained.job_id).explanation == why
    assert app.job(explained.job_id).interval == {"low": 13000.0, "high": 17000.0, "level": 0.8}
    assert app.job(unexplained.job_id).result == 15000.0  # the price itself was delivered
    # completing again refunds nothing more; the ledger replays to the same balance
    assert app.record_outcomes([Outcome(unexplained.job_id, 15000.0, "3",
                                        explain_error="again")]) == 0
    assert app.complete_prediction(unexplained.job_id, 15000.0, "3") is False
    assert app.balance(user).balance == 15
    assert replay_ledger(app, user).balance == 15


def test_a_batch_is_checked_whole_then_charged_rows_times_price_in_one_transaction(
    app: CarpriceApp,
) -> None:
    user = app.sign_up("John", "john@example.com", "correct horse").user_id
    app.deposit(user, 100)
    bad = [CAR, {**CAR, "horsepower": -5}, CAR, {**CAR, "fueltype": 7}]
    with pytest.raises(InvalidBatch) as refused:
        app.request_batch(user, "cheap", bad, "json")
    assert sorted(refused.value.rows) == [1, 3]
    assert "row 1: horsepower" in str(refused.value) and "row 3: fueltype" in str(refused.value)
    with pytest.raises(InsufficientCredits, match="11 cars with cheap costs 110"):
        app.request_batch(user, "cheap", [CAR] * 11, "json")
    assert app.balance(user).balance == 100  # refused batches charge nothing
    head = app.recorder.max_notification_id() or 0
    accepted = app.request_batch(user, "cheap", [CAR] * 7, "csv")
    assert (accepted.rows, accepted.price, accepted.balance) == (7, 10, 30)
    # one transaction: the batch, 7 jobs and 7 charges are consecutive positions
    recorded = app.recorder.select_notifications(start=head + 1, limit=100)
    assert len(recorded) == 15 and [n.id for n in recorded] == list(range(head + 1, head + 16))
    again = app.request_batch(user, "cheap", [CAR] * 7, "csv", batch_id=accepted.batch_id)
    assert again.created is False and app.balance(user).balance == 30  # a retry is not charged
    # each row is its own job: one failing is refunded alone
    jobs = [e for e in app.published_after(head, 100) if e.type == "job.requested.v1"]
    assert [e.data["batch_row"] for e in jobs] == list(range(7))
    app.fail_prediction(UUID(jobs[3].aggregate_id), "model error")
    assert app.balance(user).balance == 40


def _outcome_events(app: CarpriceApp, jobs: list[UUID], user: UUID) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    """What the outcomes recorded, without ids and times: each job's last event, the wallet's
    events after the holds."""
    def shape(e: object) -> tuple[str, dict]:  # type: ignore[type-arg]
        skip = {"originator_id", "originator_version", "timestamp", "job_id", "user_id"}
        return type(e).__name__, {k: v for k, v in vars(e).items() if k not in skip}

    ended = [shape(list(app.events.get(j))[-1]) for j in jobs]
    wallet = [shape(e) for e in app.events.get(wallet_id_for(user))
              if type(e).__name__ in ("Captured", "Released")]
    return ended + wallet


def test_a_batch_of_outcomes_and_its_one_by_one_fallback_record_the_same_events(
        app: CarpriceApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The combined save of a batch of outcomes can lose a race; then each outcome is recorded
    on its own. Both paths settle through one function: a failure keeps its trace context
    either way (the fallback used to drop it), and a price its range."""
    def run(together: bool) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
        user = app.sign_up("Tracy", f"tracy-{uuid4().hex[:8]}@example.com", "password-123").user_id
        app.deposit(user, 100)
        done, failed = (app.request_prediction(user, "cheap", CAR).job_id for _ in range(2))
        outcomes = [Outcome(done, 15000.0, "1", {"predict_ms": 1.0}, traceparent="00-aa-bb-01",
                            interval={"low": 14000.0, "high": 16000.0, "level": 0.8}, user_id=user),
                    Outcome(failed, error="model error", code="model_error",
                            traceparent="00-cc-dd-01", user_id=user)]
        if not together:
            def lost(_outcomes: list[Outcome]) -> int:
                raise IntegrityError("the combined save lost a race")
            monkeypatch.setattr(app, "_record_outcomes_together", lost)
        assert app.record_outcomes(outcomes) == 2
        monkeypatch.undo()
        assert app.balance(user).balance == 100 - 10 and app.balance(user).reserved == 0
        return _outcome_events(app, [done, failed], user)

    together, one_by_one = run(True), run(False)
    assert together == one_by_one
    failed_event = together[1][1]
    assert together[1][0] == "Failed" and failed_event["traceparent"] == "00-cc-dd-01"
    assert together[0][1]["traceparent"] == "00-aa-bb-01"
