"""What clients send: unstorable text and absurd numbers get a 422 naming the field; real cars pass."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from model_registry.features import DATASET_DIR, DATASET_FILE
from tests.e2e.conftest import Api
from tests.e2e.old_client import OldClient
from tests.procs import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
POISON = {"NUL": "giulia\u0000", "lone surrogate": "\ud800", "control": "a\u0007b",
          "C1 control": "a\u0085b"}


def _client(api: Api, credits: int = 0) -> OldClient:
    client = OldClient(api.base)
    email = f"input-{uuid.uuid4().hex[:10]}@example.com"
    client.sign_up("Input", email, "password-123")
    client.sign_in(email, "password-123")
    if credits:
        client.top_up(credits)
    return client


def _refused(r: requests.Response, field: str) -> None:
    assert r.status_code == 422, (field, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and field in detail, (field, detail)


def _post(api: Api, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    # json.dumps escapes the surrogate as \ud800: exactly what a client would put on the wire
    return requests.post(api.url(path), json=body, headers=headers or {}, timeout=30)


@pytest.mark.parametrize("kind", list(POISON))
def test_poison_text_in_every_field_is_refused_naming_it(api: Api, car: dict[str, Any], kind: str) -> None:
    bad = POISON[kind]
    client = _client(api, 100)
    h = client._headers()
    good = {"name": "Zoë", "email": f"ok-{uuid.uuid4().hex[:8]}@example.com", "password": "password-123"}
    for field in ("name", "email", "password"):
        _refused(_post(api, "/sign_up", {**good, field: good[field] + bad}), field)
    for field in ("email", "password"):
        creds = {"email": good["email"], "password": good["password"]}
        _refused(_post(api, "/sign_in", {**creds, field: creds[field] + bad}), field)
    _refused(_post(api, "/predict", {"model_name": "linear_regression" + bad, "data": car}, h), "model_name")
    for feature in ("model", "brand", "fueltype", "carbody"):
        _refused(_post(api, "/predict", {"model_name": "linear_regression",
                                         "data": {**car, feature: str(car[feature]) + bad}}, h), feature)
    shown = requests.get(api.url("/balance"), headers=h, timeout=30).json()
    # nothing was charged, held or recorded
    assert (shown["amount"], shown["reserved"], shown["stale"]) == (100, 0, False), shown


@pytest.mark.parametrize("key", ["tab\there", "c1\u0085here"])
def test_an_idempotency_key_with_control_characters_is_refused(api: Api, car: dict[str, Any],
                                                               key: str) -> None:
    # other control characters (and NUL) are not valid in an HTTP header: uvicorn refuses them
    client = _client(api, 100)
    r = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                      headers={**client._headers(), "Idempotency-Key": key.encode("latin-1")},
                      timeout=30)
    _refused(r, "Idempotency-Key")
    assert client.balance() == 100


@pytest.mark.parametrize("value", [10**400, -(10**400), 1e308, -1e308, "NaN", "Infinity"])
def test_numbers_out_of_any_sensible_range_are_refused_naming_the_field(
    api: Api, car: dict[str, Any], value: Any
) -> None:
    client = _client(api, 100)
    raw = requests.models.complexjson.dumps({"model_name": "linear_regression",  # type: ignore[attr-defined]
                                             "data": {**car, "horsepower": 0}})
    text = raw.replace('"horsepower": 0', f'"horsepower": {value}')  # NaN/Infinity: Python's JSON
    r = requests.post(api.url("/predict"), data=text, timeout=30,
                      headers={**client._headers(), "Content-Type": "application/json"})
    _refused(r, "horsepower")
    big = requests.post(api.url("/balance"), data=f'{{"amount": {value}}}', timeout=30,
                        headers={**client._headers(), "Content-Type": "application/json"})
    assert big.status_code == 422 and "amount" in big.json()["detail"]
    assert client.balance() == 100


def _as_old_clients_send(row: dict[str, Any]) -> dict[str, Any]:
    brand, _, model = str(row["CarName"]).partition(" ")  # "subaru" alone: model ""
    car = {k: v for k, v in row.items() if k not in ("car_ID", "CarName", "price")}
    return {**car, "brand": brand, "model": model}


def test_every_car_of_the_dataset_is_accepted_and_priced(api: Api) -> None:
    import pandas as pd

    raw = pd.read_csv(DATASET_DIR / DATASET_FILE)
    cars = [_as_old_clients_send({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
            for row in raw.to_dict(orient="records")]
    assert sum(c["model"] == "" for c in cars) == 2  # the two subaru cars
    client = _client(api)
    price = {m["model_name"]: m["price"] for m in client.predictors()}["linear_regression"]
    client.top_up(price * len(cars))
    jobs = []
    for car in cars:
        r = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                          headers=client._headers(), timeout=30)
        assert r.status_code == 200, (car["brand"], car["model"], r.text)
        jobs.append(r.json()["job_id"])
    done = wait_for(lambda: (h := requests.get(api.url("/history"), params={"limit": 500},
                                               headers=client._headers(), timeout=30).json())
                    and all(j["status"] == "finished" for j in h["jobs"]) and len(h["jobs"]) == len(cars)
                    and h, timeout=120, interval=0.5, what="every car priced")
    assert all(j["result"] > 0 for j in done["jobs"])
    assert client.balance() == 0
