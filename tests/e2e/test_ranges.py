"""Ranges and explanations over HTTP, against the running stack."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Api

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _user(api: Api, credits: int) -> dict[str, str]:
    email = f"range-{uuid.uuid4().hex[:10]}@example.com"
    requests.post(api.url("/sign_up"), json={"name": "R", "email": email, "password": "password-123"},
                  timeout=30).raise_for_status()
    token = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                          timeout=30).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    requests.post(api.url("/balance"), json={"amount": credits}, headers=h, timeout=30).raise_for_status()
    return h


def test_a_bought_explanation_adds_up_and_every_result_has_its_range(api: Api,
                                                                      car: dict[str, Any]) -> None:
    h = _user(api, 200)
    models = {m["model_name"]: m for m in
              requests.get(api.url("/predictors"), headers=h, timeout=30).json()["models"]}
    gb = models["gradient_boosting"]
    assert gb["explain_price"] > 0 and gb["interval_level"] == 0.8
    assert 0.7 < gb["metrics"]["coverage"]["mean"] < 0.9
    submitted = requests.post(api.url("/predict"), json={"model_name": "gradient_boosting",
                                                         "data": car, "explain": True},
                              headers=h, timeout=30).json()
    assert submitted["price"] == gb["price"] + gb["explain_price"]
    assert submitted["balance"] == 200 - submitted["price"]
    job = requests.get(api.url(f"/predict/{submitted['job_id']}?wait=25"), headers=h,
                       timeout=60).json()
    assert job["status"] == "finished", job
    low, high = job["interval"]["low"], job["interval"]["high"]
    assert low < job["result"] < high and job["interval"]["level"] == 0.8
    explanation = job["explanation"]
    effects = [c["effect"] for c in explanation["contributions"]]
    assert round(explanation["base"] + sum(effects), 2) == job["result"]
    assert {c["feature"] for c in explanation["contributions"]} <= set(car)
    # history has the same; the old clients' poll still has `result` as a number
    history = requests.get(api.url("/history"), headers=h, timeout=30).json()
    row = next(j for j in history["jobs"] if j["job_id"] == submitted["job_id"])
    assert row["interval"] == job["interval"] and row["explanation"] == explanation
    old = requests.get(api.url("/predict"), params={"job_id": submitted["job_id"]}, headers=h,
                       timeout=30).json()
    assert isinstance(old["result"], float) and old["result"] == job["result"]


def test_explain_must_be_a_boolean(api: Api, car: dict[str, Any]) -> None:
    h = _user(api, 100)
    r = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car,
                                                 "explain": "maybe"}, headers=h, timeout=30)
    assert r.status_code == 422 and "explain" in r.json()["detail"]
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == 100


def _dataset_csv(rows: int) -> str:
    from model_registry.features import DATASET_DIR, DATASET_FILE

    lines = (DATASET_DIR / DATASET_FILE).read_text().splitlines()
    return "\n".join(lines[:rows + 1]) + "\n"


def _batch_when_done(api: Api, h: dict[str, str], batch_id: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        batch = requests.get(api.url(f"/predict/batch/{batch_id}"), headers=h, timeout=30).json()
        if batch["status"] == "finished":
            return dict(batch)
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} did not finish: {batch}")


def test_a_fleet_csv_is_checked_whole_charged_once_and_returned_with_prices(api: Api) -> None:
    import csv
    import io

    h = _user(api, 1000)
    price = next(m["price"] for m in requests.get(api.url("/predictors"), headers=h,
                                                  timeout=30).json()["models"]
                 if m["model_name"] == "linear_regression")
    text = _dataset_csv(40)
    broken = text.replace(",111,5000,", ",lots,5000,", 1)  # row 0's horsepower
    r = requests.post(api.url("/predict/batch"), data={"model_name": "linear_regression"},
                      files={"file": ("fleet.csv", broken, "text/csv")}, headers=h, timeout=60)
    assert r.status_code == 422 and "row 0: horsepower" in r.json()["detail"], r.text
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == 1000
    r = requests.post(api.url("/predict/batch"), data={"model_name": "linear_regression"},
                      files={"file": ("fleet.csv", text, "text/csv")}, headers=h, timeout=60)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert (accepted["rows"], accepted["total_price"]) == (40, 40 * price)
    assert accepted["balance"] == 1000 - 40 * price
    batch = _batch_when_done(api, h, accepted["batch_id"])
    assert (batch["done"], batch["failed"], batch["pending"]) == (40, 0, 0)
    out = requests.get(api.url(f"/predict/batch/{accepted['batch_id']}/results.csv"), headers=h,
                       timeout=30)
    assert out.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(out.text)))
    assert [int(r["row"]) for r in rows] == list(range(40))
    assert rows[0]["brand"] == "alfa-romero" and rows[0]["model"] == "giulia"
    assert all(float(r["low"]) < float(r["price"]) < float(r["high"]) for r in rows)
    assert {r["status"] for r in rows} == {"finished"}
    history = requests.get(api.url("/history"), headers=h, timeout=30).json()
    assert [b["batch_id"] for b in history["batches"]] == [accepted["batch_id"]]
    assert history["job_ids"] == []  # the 40 rows are one entry, not 40 jobs
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == \
        1000 - 40 * price
    other = _user(api, 10)
    assert requests.get(api.url(f"/predict/batch/{accepted['batch_id']}"), headers=other,
                        timeout=30).status_code == 404


def test_a_json_fleet_the_balance_cannot_cover_is_refused_with_402(api: Api,
                                                                   car: dict[str, Any]) -> None:
    h = _user(api, 25)
    r = requests.post(api.url("/predict/batch"), json={"model_name": "linear_regression",
                                                       "cars": [car] * 3}, headers=h, timeout=30)
    assert r.status_code == 402 and "3 cars" in r.json()["detail"]
    r = requests.post(api.url("/predict/batch"), json={"model_name": "linear_regression",
                                                       "cars": [car] * 2}, headers=h, timeout=30)
    assert r.status_code == 202 and r.json()["balance"] == 25 - 2 * r.json()["price"]
    r = requests.post(api.url("/predict/batch"), json={"model_name": "linear_regression",
                                                       "cars": []}, headers=h, timeout=30)
    assert r.status_code == 422 and "cars" in r.json()["detail"]
