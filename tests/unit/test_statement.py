"""Statements equal the replay, line for line, over random command histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.application import CarpriceApp
from commands.audit import KINDS, replay_ledger, statement
from domain.errors import InsufficientCredits
from domain.ids import wallet_id_for
from tests.fakes import CAR, FakeCatalog

COMMANDS = st.lists(st.one_of(
    st.tuples(st.just("deposit"), st.integers(1, 200)),
    st.tuples(st.just("predict"), st.sampled_from(["cheap", "pricey"])),
    st.tuples(st.just("fail"), st.integers(0, 30)),
    st.tuples(st.just("complete"), st.integers(0, 30)),
    st.tuples(st.just("grant"), st.integers(1, 60)),
    st.tuples(st.just("expire"), st.integers(0, 0)),
), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=COMMANDS, cut=st.tuples(st.integers(0, 60), st.integers(0, 60)))
def test_a_statement_is_the_replay_cut_to_its_period(history, cut) -> None:  # type: ignore[no-untyped-def]
    app = CarpriceApp(FakeCatalog())
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    jobs = []
    for command, arg in history:
        if command == "deposit":
            app.deposit(user, arg)
        elif command == "grant":
            app.grant_credits(user, arg, datetime.now(UTC) + timedelta(hours=1), "promotion")
        elif command == "expire":  # every grant so far reaches its time
            app.expire_grants(user, datetime.now(UTC) + timedelta(hours=2))
        elif command == "predict":
            try:
                jobs.append(app.request_prediction(user, arg, CAR).job_id)
            except InsufficientCredits:
                pass
        elif jobs:
            job = jobs[arg % len(jobs)]
            if app.job(job).status == "queued":
                if command == "fail":
                    app.fail_prediction(job, "model error")
                else:
                    app.complete_prediction(job, 15000.0, "1")
    entries = replay_ledger(app, user).entries
    times = [e.time for e in entries]
    lo, hi = sorted(cut)
    start = times[0] + (times[-1] - times[0]) * lo / 60 - timedelta(microseconds=1)
    end = times[0] + (times[-1] - times[0]) * hi / 60
    found = statement(app, user, start, end)
    inside = [e for e in entries if start <= e.time <= end and e.type in KINDS]
    assert [(x.time, x.amount, x.balance, x.job_id) for x in found.lines] == \
        [(e.time, e.amount, e.balance, e.job_id) for e in inside]
    # the opening is what stood before `start`; an event stamped at `start` is in the period
    # (times are whole microseconds, and the cut can land on one)
    # the oracle is the wallet aggregate itself, rebuilt from its events up to the cut (not
    # replay_ledger, which statement() uses)
    assert (found.opening, found.opening_reserved) == _wallet_as_of(app, user, start, strictly=True)
    assert (found.closing, found.closing_reserved) == _wallet_as_of(app, user, end)
    assert found.opening + sum(x.amount for x in found.lines) == found.closing
    assert found.opening_reserved + sum(x.credits for x in found.lines if x.kind == "reservation") \
        - sum(x.credits for x in found.lines if x.kind in ("capture", "release")) == found.closing_reserved
    assert {x.kind for x in found.lines} <= {"deposit", "grant", "reservation", "capture", "release",
                                             "expiry"}
    reserved = {e.job_id: e.detail for e in entries if e.type == "Reserved"}
    assert all(x.model == reserved[x.job_id] for x in found.lines if x.kind in ("capture", "release"))
    whole = statement(app, user)
    assert whole.opening == 0 and whole.closing == app.balance(user).balance
    assert whole.closing_reserved == app.balance(user).reserved
    assert len(whole.lines) == len([e for e in entries if e.type in KINDS])


def _wallet_as_of(app: CarpriceApp, user: UUID, when: datetime, strictly: bool = False,
                  ) -> tuple[int, int]:
    """(balance, reserved) of the wallet aggregate at its last event before (or at) `when`."""
    wallet_id = wallet_id_for(user)
    stamps = [e.timestamp for e in app.events.get(wallet_id)]
    version = sum(1 for t in stamps if (t < when if strictly else t <= when))
    if version == 0:
        return 0, 0
    wallet = app.repository.get(wallet_id, version=version)
    return wallet.balance, wallet.reserved


def test_an_event_stamped_at_the_start_of_a_period_is_in_it_not_in_its_opening() -> None:
    app = CarpriceApp(FakeCatalog())
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    app.deposit(user, 155)
    app.deposit(user, 20)
    first, second = [e for e in replay_ledger(app, user).entries if e.type == "Deposited"]
    found = statement(app, user, first.time, second.time)
    assert found.opening == 0
    assert [(x.kind, x.amount) for x in found.lines] == [("deposit", 155), ("deposit", 20)]
    assert found.closing == 175
    later = statement(app, user, second.time, second.time)
    assert (later.opening, [x.amount for x in later.lines], later.closing) == (155, [20], 175)


def test_spend_per_model_counts_captures_holds_releases_and_expiries_once() -> None:
    """Billing per model comes from the ledger's replay (the dashboard shows it as given):
    a finished job is spent, a running one on hold, a failed or expired one given back."""
    from commands.audit import ModelSpend, spend_per_model

    app = CarpriceApp(FakeCatalog())
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    app.deposit(user, 200)
    jobs = {name: [app.request_prediction(user, model, CAR).job_id for _ in range(n)]
            for name, model, n in (("c", "cheap", 4), ("p", "pricey", 3))}
    app.complete_prediction(jobs["c"][0], 1.0, "1")
    app.complete_prediction(jobs["c"][1], 1.0, "1")
    app.fail_prediction(jobs["c"][2], "model error")
    app.complete_prediction(jobs["p"][0], 1.0, "3")
    app.expire_prediction(jobs["p"][1])
    app.fail_prediction(jobs["p"][1], "late")  # already ended: not given back twice
    spend = spend_per_model(replay_ledger(app, user).entries)
    assert spend == [ModelSpend("cheap", spent=20, on_hold=10, given_back=10),
                     ModelSpend("pricey", spent=40, on_hold=40, given_back=40)]
    assert sum(s.spent + s.on_hold for s in spend) == 200 - app.balance(user).balance
