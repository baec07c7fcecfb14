"""Receipts on the in-memory store: what a job paid, tied to its events; any change is caught."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from commands.application import CarpriceApp
from commands.receipts import differences, input_sha256, receipt
from commands.results import Outcome
from domain.catalog import ModelFingerprint
from tests.fakes import CAR, FakeCatalog


def _fingerprint(name: str, version: str) -> ModelFingerprint:
    return ModelFingerprint(name, version, f"card-of-{name}-{version}", f"artifact-of-{name}-{version}")


@pytest.fixture
def app() -> CarpriceApp:
    return CarpriceApp(FakeCatalog())


def _user(app: CarpriceApp, credits: int = 100) -> Any:
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    app.deposit(user, credits)
    return user


def _receipt(app: CarpriceApp, job_id: Any) -> dict[str, Any]:
    # as a client holds it: the API's JSON, read back
    return json.loads(json.dumps(receipt(app, app.job(job_id), _fingerprint)))


def test_a_finished_job_s_receipt_shows_what_was_held_and_paid_with_its_events(app: CarpriceApp) -> None:
    user = _user(app)
    job = app.request_prediction(user, "pricey", CAR).job_id
    app.record_outcome(Outcome(
        job, 15250.5, "3", interval={"low": 14000.0, "high": 16500.0, "level": 0.8}))
    r = _receipt(app, job)
    assert r["status"] == "finished" and r["result"]["price"] == 15250.5
    assert r["credits"] == {"price": 40, "surcharge": 0, "held": 40, "paid": 40, "released": 0,
                            "forfeited": 0, "on_hold": 0}
    assert r["model"] == {"name": "pricey", "version": "3", "card_sha256": "card-of-pricey-3",
                          "artifact_sha256": "artifact-of-pricey-3"}
    assert r["input_sha256"] == input_sha256(CAR) != input_sha256({**CAR, "horsepower": 111})
    assert [e["type"] for e in r["events"]] == ["job.requested.v1", "wallet.reserved.v1",
                                                "job.completed.v1", "wallet.captured.v1"]
    positions = [e["position"] for e in r["events"]]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert all(len(e["sha256"]) == 64 for e in r["events"])
    assert differences(r, _receipt(app, job)) == []


def test_a_failed_job_s_receipt_gives_the_price_back(app: CarpriceApp) -> None:
    user = _user(app)
    job = app.request_prediction(user, "cheap", CAR).job_id
    running = _receipt(app, job)
    assert running["credits"]["on_hold"] == 10 and running["ended_at"] is None
    app.fail_prediction(job, "model error")
    r = _receipt(app, job)
    assert r["credits"] == {"price": 10, "surcharge": 0, "held": 10, "paid": 0, "released": 10,
                            "forfeited": 0, "on_hold": 0}
    assert r["error"] == {"code": "model_error", "reason": "model error"} and r["result"] is None
    assert [e["type"] for e in r["events"]][-2:] == ["job.failed.v1", "wallet.released.v1"]
    # the receipt taken while it ran no longer holds: what changed is named
    found = "\n".join(differences(running, r))
    assert "status: the receipt says 'queued', the store says 'failed'" in found
    assert "credits.released" in found and "events.length" in found


def test_an_undelivered_explanation_is_not_paid_for(app: CarpriceApp) -> None:
    user = _user(app)
    job = app.request_prediction(user, "pricey", CAR, explain=True).job_id
    app.record_outcome(Outcome(
        job, 15000.0, "3", explain_error="the explainer failed"))
    credits = _receipt(app, job)["credits"]
    assert credits == {"price": 45, "surcharge": 5, "held": 45, "paid": 40, "released": 5,
                       "forfeited": 0, "on_hold": 0}


@pytest.mark.parametrize(("path", "value"), [
    (("credits", "paid"), 1),
    (("input_sha256",), input_sha256({**CAR, "horsepower": 300})),
    (("model", "artifact_sha256"), "0" * 64),
    (("result", "price"), 9999.0),
    (("events", 1, "position"), 10**6),
    (("events", 0, "sha256"), "f" * 64),
])
def test_a_tampered_receipt_is_caught_naming_the_field(app: CarpriceApp, path: tuple[Any, ...],
                                                       value: Any) -> None:
    user = _user(app)
    job = app.request_prediction(user, "pricey", CAR).job_id
    app.complete_prediction(job, 15000.0, "3")
    genuine = _receipt(app, job)
    forged = copy.deepcopy(genuine)
    target = forged
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    found = differences(forged, genuine)
    name = ".".join(str(p) for p in path).replace(".1.", "[1].").replace(".0.", "[0].")
    assert len(found) == 1 and found[0].startswith(f"{name}: the receipt says {value!r}"), found


def test_a_receipt_with_an_event_left_out_or_a_field_added_is_caught(app: CarpriceApp) -> None:
    user = _user(app)
    job = app.request_prediction(user, "cheap", CAR).job_id
    app.fail_prediction(job, "model error")
    genuine = _receipt(app, job)
    shorter = {**genuine, "events": genuine["events"][:-1]}  # hiding the release
    assert any(line.startswith("events.length: the receipt says 3") for line in differences(shorter, genuine))
    padded = {**genuine, "discount": 10}
    assert differences(padded, genuine) == ["discount: not in the store's receipt (the receipt says 10)"]
