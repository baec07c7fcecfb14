"""Holds and expiring grants on the real store, processes and read tables."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any
from uuid import UUID

import psycopg
import pytest

from commands.application import CarpriceApp
from commands.audit import replay_ledger, statement
from domain.ids import wallet_id_for
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _one(db: str, query: str, *params: Any) -> tuple[Any, ...] | None:
    with psycopg.connect(db, autocommit=True) as conn:
        return conn.execute(query, params).fetchone()  # type: ignore[arg-type]


def _kinds(app: CarpriceApp, user: UUID) -> list[str]:
    return [type(e).__name__ for e in app.events.get(wallet_id_for(user))]


def test_a_grant_expires_exactly_once_across_reaper_crashes_and_a_racing_command(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str, car: dict[str, Any]
) -> None:
    email = f"promo-{unique}@example.com"
    user = app.sign_up("Promo", email, "password-123").user_id
    app.deposit(user, 100)
    granted = procs.start("credits", "grant", email, "30", "--expires", "6s", "--reason", "welcome")
    assert granted.popen.wait(60) == 0, granted.text()
    assert "30 promotional credits granted" in granted.text()
    price = app.catalog.offer("linear_regression").price
    job = app.request_prediction(user, "linear_regression", car).job_id  # spent from the grant first
    state = app.balance(user)
    assert (state.balance, state.reserved, state.promotional) == (130 - price, price, 30 - price)

    first = procs.start("reaper")
    wait_for(lambda: _one(stack.database_url, "SELECT 1 FROM reaper_open_grants WHERE user_id = %s",
                          user), timeout=30, what="the reaper to note the grant")
    first.kill()  # a crash before the grant's time
    wait_for(lambda: _one(stack.database_url, "SELECT now() > expires_at FROM reaper_open_grants "
                          "WHERE user_id = %s", user) == (True,), timeout=30, what="the grant's time")
    # two reapers (one active) and three commands all race to expire it
    reapers = [procs.start("reaper"), procs.start("reaper")]
    wait_for(lambda: any("reaper: active" in r.text() for r in reapers), timeout=60,
             what="a reaper to lead")
    errors: list[BaseException] = []

    def race() -> None:
        try:
            app.expire_grants(user)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    racing = [threading.Thread(target=race) for _ in range(3)]
    for t in racing:
        t.start()
    for t in racing:
        t.join(30)
    assert errors == []
    wait_for(lambda: not _one(stack.database_url, "SELECT 1 FROM reaper_open_grants WHERE "
                              "user_id = %s", user), timeout=30, what="the expiry to be followed")
    for r in reapers:
        r.kill()
    procs.start("reaper")  # and one more restart after it expired: it runs two whole rounds
    other = app.sign_up("Other", f"other-{unique}@example.com", "password-123").user_id
    for _ in range(2):  # the second round begins after the first ended, its grants included
        app.deposit(other, 1)
        head = app.head_position()
        wait_for(lambda h=head: _one(stack.database_url, "SELECT position >= %s FROM relay_position "
                                     "WHERE name = 'reaper'", h) == (True,), timeout=60,
                 what="the restarted reaper to run a round")
    assert _kinds(app, user).count("GrantExpired") == 1
    expired = [e for e in replay_ledger(app, user).entries if e.type == "GrantExpired"]
    assert expired[0].credits == 30 - price  # what was left; the held part is still held
    state = app.balance(user)
    assert (state.balance, state.reserved, state.promotional) == (100, price, 0)

    # the job fails after its grant expired: what it held of the grant is gone with it
    app.fail_prediction(job, "model error")
    state = app.balance(user)
    assert (state.balance, state.reserved, state.promotional) == (100, 0, 0)
    kinds = [line.kind for line in statement(app, user).lines]
    assert kinds == ["deposit", "grant", "reservation", "expiry", "release"]

    procs.start("relay")
    procs.start("consume", "projections")
    wait_for(lambda: _one(stack.database_url, "SELECT balance, reserved, promotional FROM balances "
                          "WHERE user_id = %s", user) == (100, 0, 0), timeout=60,
             what="the balances row to agree with the replay")
    assert _one(stack.database_url, "SELECT amount, remaining, expired_amount FROM credit_grants "
                "WHERE user_id = %s", user) == (30, 0, 30 - price)
    audit = subprocess.run([sys.executable, "-m", "cli.main", "audit", "--all", "--json"],
                           env=procs.env, capture_output=True, text=True, timeout=120)
    mine = next(r for r in json.loads(audit.stdout) if r["user_id"] == str(user))
    assert mine["consistent"] and (mine["reserved"], mine["promotional"]) == (0, 0)


def test_a_grant_needs_a_user_a_time_to_come_and_a_reason(procs: Processes, app: CarpriceApp,
                                                          unique: str) -> None:
    email = f"grant-{unique}@example.com"
    app.sign_up("Grant", email, "password-123")
    cases = [((f"nobody-{unique}@example.com", "5", "--expires", "1d", "--reason", "x"), "no account"),
             ((email, "5", "--expires", "soon", "--reason", "x"), "--expires 'soon'"),
             ((email, "0", "--expires", "1d", "--reason", "x"), "must be positive"),
             ((email, "5", "--expires", "2020-01-01T00:00:00+00:00", "--reason", "x"), "future")]
    for args, message in cases:
        p = procs.start("credits", "grant", *args)
        assert p.popen.wait(60) != 0 and message in p.text(), (args, p.text())
    again = [procs.start("credits", "grant", email, "5", "--expires", "1d", "--reason", "promo",
                         "--id", f"spring-{unique}") for _ in range(2)]
    assert [p.popen.wait(60) for p in again] == [0, 0]
    assert app.balance(app.authenticate(email, "password-123").user_id).promotional == 5
