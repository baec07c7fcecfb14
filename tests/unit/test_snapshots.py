"""Wallets are snapshotted every 100 events: a long history loads from its latest snapshot."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Repository

from commands.application import CarpriceApp
from domain.ids import wallet_id_for
from domain.wallet import Wallet
from tests.fakes import CAR, FakeCatalog


class CountingEvents:
    """The app's event store, counting the events a load reads."""

    def __init__(self, events: Any) -> None:
        self.events, self.read = events, 0

    def get(self, *args: Any, **kwargs: Any) -> Any:
        for event in self.events.get(*args, **kwargs):
            self.read += 1
            yield event


def test_a_wallet_with_10000_events_loads_from_a_snapshot_and_a_few_events() -> None:
    app = CarpriceApp(FakeCatalog(), env={"AGGREGATE_CACHE_MAXSIZE": "100"})
    user = app.sign_up("Long", "long@example.com", "password-1").user_id
    app.deposit(user, 100_000)
    jobs = [app.request_prediction(user, "cheap", CAR).job_id for _ in range(40)]
    for job in jobs[:10]:
        app.fail_prediction(job, "boom")
    for i in range(10_000 - 52):
        app.deposit(user, 1, f"key-{i}")
    wallet_id = wallet_id_for(user)
    assert app.aggregate_version(wallet_id) == 10_000
    assert [s.originator_version for s in app.snapshots.get(wallet_id)][-1] == 10_000  # type: ignore[union-attr]
    counted = CountingEvents(app.events)
    fresh = Repository(event_store=counted, snapshot_store=app.snapshots)  # type: ignore[arg-type]
    wallet: Wallet = fresh.get(wallet_id)
    assert counted.read <= 100  # the snapshot, and what came after it
    replayed: Wallet = Repository(event_store=app.events).get(wallet_id)  # no snapshots: every event
    assert (wallet.version, wallet.balance) == (replayed.version, replayed.balance) == (10_000, 100_000
                                                                                       - 300 + 9_948)
    assert wallet.charges == replayed.charges and wallet.refunded == replayed.refunded
    assert wallet.holds == replayed.holds and len(wallet.holds) == 30 and wallet.settled == replayed.settled
    assert wallet.deposit_keys == replayed.deposit_keys and len(wallet.deposit_keys) == 9_948
    app.deposit(user, 5, "key-0")  # the restored keys still make a retried deposit a no-op
    assert app.balance(user).balance == wallet.balance


def test_a_process_that_did_not_take_a_snapshot_can_read_it() -> None:
    import subprocess
    import sys

    # a fresh interpreter: only the imports a process makes, no snapshot taken in it
    code = ("import commands.application; from eventsourcing.utils import resolve_topic; "
            "print(resolve_topic('wallet.snapshot.v1').__qualname__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "Wallet.Snapshot", out.stderr
