"""The relay on the in-memory event store, publishing to a fake broker."""

from __future__ import annotations

import json
import threading

from commands.application import CarpriceApp
from commands.relay import Relay
from tests.fakes import CAR, FakeBroker, FakeCatalog, FakeFollower
from tests.procs import wait_for


def _app_with_events() -> tuple[CarpriceApp, list[int]]:
    app = CarpriceApp(FakeCatalog())
    for i in range(3):
        user = app.sign_up("R", f"r{i}@example.com", "password-1").user_id
        app.deposit(user, 50)
        app.request_prediction(user, "cheap", CAR)
    positions = [n.id for n in app.recorder.select_notifications(start=1, limit=1000)]
    return app, positions


def _run(relay: Relay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread


def test_every_event_is_published_in_order_and_the_position_follows_the_acks() -> None:
    app, positions = _app_with_events()
    broker, follower = FakeBroker(), FakeFollower()
    relay = Relay(app, follower, "t.events", producer=broker.producer, end_offsets=broker.end_offsets,
                  check_every=0.05)
    thread = _run(relay)
    wait_for(lambda: follower.at == positions[-1], timeout=10, interval=0.01, what="all published")
    relay.stop()
    thread.join(5)
    assert sorted(broker.positions()) == positions
    for log in broker.logs:  # one user's events share a partition, in the store's order
        by_user: dict[str, list[int]] = {}
        for key, value, headers in log:
            event = json.loads(value)
            assert key.decode() == event["user_id"] and headers["event_type"].decode() == event["type"]
            by_user.setdefault(event["user_id"], []).append(event["position"])
        assert all(p == sorted(p) for p in by_user.values())
    assert follower.announced and set(follower.announced) == {"t.events"}


def test_nothing_is_saved_as_published_until_the_broker_acknowledged() -> None:
    app, positions = _app_with_events()
    broker, follower = FakeBroker(), FakeFollower()
    broker.failing = 3
    relay = Relay(app, follower, "t.events", producer=broker.producer, end_offsets=broker.end_offsets,
                  backoff=0.01)
    thread = _run(relay)
    wait_for(lambda: follower.at == positions[-1], timeout=20, interval=0.01,
             what="published after the errors")
    relay.stop()
    thread.join(5)
    assert sorted(set(broker.positions())) == positions  # all of them, once the broker answered
    assert broker.failing == 0


def test_a_broker_that_lost_what_it_acknowledged_gets_it_again() -> None:
    app, positions = _app_with_events()
    broker, follower = FakeBroker(), FakeFollower()
    relay = Relay(app, follower, "t.events", producer=broker.producer, end_offsets=broker.end_offsets,
                  check_every=0.05)
    thread = _run(relay)
    wait_for(lambda: follower.at == positions[-1], timeout=10, interval=0.01, what="first publication")
    broker.lose()  # e.g. Tansu restarted: memory storage
    wait_for(lambda: sorted(broker.positions()) == positions, timeout=10, interval=0.01,
             what="everything published again")
    relay.stop()
    thread.join(5)
    assert relay.losses == 1 and follower.rewinds == [0]


def test_a_standby_relay_publishes_nothing() -> None:
    app, _ = _app_with_events()
    broker = FakeBroker()
    relay = Relay(app, FakeFollower(leader=False), "t.events", producer=broker.producer,
                  end_offsets=broker.end_offsets)
    relay.run()  # returns at once: another relay is active
    assert broker.positions() == []
