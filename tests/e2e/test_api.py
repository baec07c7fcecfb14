"""The REST API against the running stack: the old clients' contract, errors, isolation, money."""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
import requests

from tests.e2e.conftest import Api
from tests.e2e.old_client import OldClient

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _signed_in(api: Api, credits: int = 0) -> tuple[OldClient, str]:
    client = OldClient(api.base)
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    client.sign_up("Tester", email, "password-123")
    client.sign_in(email, "password-123")
    if credits:
        client.top_up(credits)
    return client, email


def _wait_done(client: OldClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["status"] in ("finished", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_the_old_clients_whole_flow_works_unchanged(api: Api, car: dict[str, Any]) -> None:
    client = OldClient(api.base)
    email = f"John-{uuid.uuid4().hex[:8]}@Example.com"
    signed_up = client.sign_up("John", email, "password-123")
    assert (signed_up["name"], signed_up["email"]) == ("John", email.lower())
    assert "password" not in str(signed_up).lower()
    signed = client.sign_in(email, "password-123")
    assert signed["token"] == signed["access_token"] and signed["token_type"] == "bearer"
    assert client.balance() == 0
    assert client.top_up(100) == 100
    assert client.balance() == 100  # read-your-writes
    models = {m["model_name"]: m["price"] for m in client.predictors()}
    assert set(models) == {"linear_regression", "gradient_boosting", "random_forest"}
    assert sorted(models.values()) == [10, 25, 40]
    job_id = client.predict("gradient_boosting", car)
    assert client.job(job_id)["status"] in ("queued", "started", "finished")  # never 404
    assert client.balance() == 100 - models["gradient_boosting"]
    done = _wait_done(client, job_id)
    assert done["status"] == "finished" and 5000 < done["result"] < 50000
    assert done["finished_at"] is not None and done["model_name"] == "gradient_boosting"
    assert client.history() == [job_id]
    listed = {k: [v] for k, v in car.items()}  # the documented one-element-list form
    assert _wait_done(client, client.predict("linear_regression", listed))["status"] == "finished"
    by_query = requests.get(api.url("/predict"), params={"job_id": job_id}, timeout=30,
                            headers=client._headers())
    assert by_query.status_code == 200 and by_query.json()["result"] == done["result"]


def test_history_pages_newest_first_and_running_jobs_empty_out(api: Api, car: dict[str, Any]) -> None:
    client, _ = _signed_in(api, 100)
    jobs = [client.predict("linear_regression", car) for _ in range(3)]
    for job in jobs:
        _wait_done(client, job)
    h = client._headers()
    first = requests.get(api.url("/history"), params={"limit": 2}, headers=h, timeout=30).json()
    assert first["job_ids"] == jobs[::-1]
    second = requests.get(api.url("/history"), params={"limit": 2, "cursor": first["next_cursor"]},
                          headers=h, timeout=30).json()
    assert [j["job_id"] for j in first["jobs"] + second["jobs"]] == jobs[::-1]
    assert second["next_cursor"] is None
    running = requests.get(api.url("/jobs/running"), headers=h, timeout=30).json()
    assert running == {"jobs": [], "stale": False}
    me = requests.get(api.url("/me"), headers=h, timeout=30).json()
    assert me["name"] == "Tester"


def _problem(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["status"] == status
    return body["detail"]


def _prices(client: OldClient) -> dict[str, int]:
    return {m["model_name"]: m["price"] for m in client.predictors()}


def test_the_better_model_costs_more(api: Api) -> None:
    client, _ = _signed_in(api)
    listed = requests.get(api.url("/predictors"), headers=client._headers(), timeout=30).json()
    by_quality = sorted(listed["models"], key=lambda m: m["metrics"]["r2"]["mean"])
    prices = [m["price"] for m in by_quality]
    assert prices == sorted(prices) and len(set(prices)) == len(prices) == 3


def test_every_promised_error_has_its_status_and_a_clear_detail(api: Api, car: dict[str, Any]) -> None:
    client, email = _signed_in(api, 30)
    priciest = max(_prices(client).items(), key=lambda kv: kv[1])
    h = client._headers()
    dup = requests.post(api.url("/sign_up"), json={"name": "X", "email": email.upper(),
                                                   "password": "password-123"}, timeout=30)
    assert "already registered" in _problem(dup, 409)
    wrong = requests.post(api.url("/sign_in"), json={"email": email, "password": "nope-nope"}, timeout=30)
    unknown = requests.post(api.url("/sign_in"), json={"email": "x" + email, "password": "nope-nope"},
                            timeout=30)
    assert _problem(wrong, 401) == _problem(unknown, 401) == "invalid email or password"
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic abc"}):
        r = requests.get(api.url("/balance"), headers=headers, timeout=30)
        _problem(r, 401)
        assert r.headers["WWW-Authenticate"] == "Bearer"
    token = client.token or ""
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    _problem(requests.get(api.url("/balance"), headers={"Authorization": f"Bearer {tampered}"},
                          timeout=30), 401)
    claims = jwt.decode(token, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, "guess", algorithm="HS256")
    _problem(requests.get(api.url("/balance"), headers={"Authorization": f"Bearer {expired}"},
                          timeout=30), 401)
    poor = requests.post(api.url("/predict"), headers=h, json={"model_name": priciest[0],
                                                               "data": car}, timeout=30)
    detail = _problem(poor, 402)
    assert str(priciest[1]) in detail and "30" in detail and poor.json()["balance"] == 30
    unknown_model = requests.post(api.url("/predict"), headers=h,
                                  json={"model_name": "magic", "data": car}, timeout=30)
    assert "unknown model" in _problem(unknown_model, 404)
    bad = requests.post(api.url("/predict"), headers=h, timeout=30, json={
        "model_name": "linear_regression",
        "data": {**car, "horsepower": -5, "fueltype": 3}})
    detail = _problem(bad, 422)
    assert "horsepower" in detail and "fueltype" in detail and "from 48" not in detail
    assert set(bad.json()["errors"]) == {"horsepower", "fueltype"}
    for job_id in (str(uuid.uuid4()), "not-a-uuid", "../../etc/passwd"):
        _problem(requests.get(api.url(f"/predict/{job_id}"), headers=h, timeout=30), 404)
    lower = requests.post(api.url("/balance"), headers=h, json={"new_amount": 5}, timeout=30)
    assert "below your balance" in _problem(lower, 422)
    assert client.balance() == 30  # nothing above changed the money


def test_too_many_failed_sign_ins_get_429_with_retry_after(api: Api) -> None:
    _, email = _signed_in(api)
    statuses = [requests.post(api.url("/sign_in"), json={"email": email, "password": "wrong-one"},
                              timeout=30) for _ in range(7)]
    assert [r.status_code for r in statuses[:5]] == [401] * 5
    assert statuses[-1].status_code == 429 and int(statuses[-1].headers["Retry-After"]) > 0
    assert "too many" in statuses[-1].json()["detail"]


def test_users_cannot_see_each_others_jobs(api: Api, car: dict[str, Any]) -> None:
    alice, _ = _signed_in(api, 50)
    bob, _ = _signed_in(api, 50)
    job = alice.predict("linear_regression", car)
    for url in (api.url(f"/predict/{job}"),):
        r = requests.get(url, headers=bob._headers(), timeout=30)
        assert r.status_code == 404
        assert "linear_regression" not in r.text and "features" not in r.text
    r = requests.get(api.url("/predict"), headers=bob._headers(), json={"job_id": job}, timeout=30)
    assert r.status_code == 404
    assert bob.history() == [] and job in alice.history()


def test_concurrent_top_ups_and_predictions_keep_the_balance_exact(api: Api, car: dict[str, Any]) -> None:
    client, _ = _signed_in(api)
    h = client._headers()

    def deposit(_: int) -> int:
        return requests.post(api.url("/balance"), headers=h, json={"amount": 10}, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(deposit, range(20))) == {200}
    assert client.balance() == 200

    def predict(_: int) -> int:
        return requests.post(api.url("/predict"), headers=h, timeout=30,
                             json={"model_name": "gradient_boosting", "data": car}).status_code

    price = _prices(client)["gradient_boosting"]
    affordable = 200 // price
    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(predict, range(affordable + 4)))
    assert codes.count(200) == affordable and codes.count(402) == 4
    assert client.balance() == 200 - affordable * price


def test_the_audit_is_consistent_after_a_random_workload(api: Api, car: dict[str, Any]) -> None:
    client, _ = _signed_in(api, 200)
    rng = random.Random(7)
    jobs = []
    for _ in range(25):
        if rng.random() < 0.3:
            client.top_up(rng.randint(1, 30))
        else:
            try:
                jobs.append(client.predict(rng.choice(["linear_regression", "gradient_boosting"]), car))
            except RuntimeError as exc:
                assert "not enough credits" in str(exc)
    for job in jobs:
        _wait_done(client, job)
    audit = requests.get(api.url("/balance/audit"), headers=client._headers(), timeout=30).json()
    assert audit["consistent"] is True
    assert audit["replayed_balance"] == audit["projected_balance"] == client.balance()
    assert audit["entries"][-1]["balance"] == audit["replayed_balance"]
    first_time = audit["entries"][1]["time"]
    earlier = requests.get(api.url("/balance/audit"), params={"as_of": first_time},
                           headers=client._headers(), timeout=30).json()
    assert earlier["replayed_balance"] == 200


def test_idempotency_key_replays_the_first_response(api: Api, car: dict[str, Any]) -> None:
    client, _ = _signed_in(api, 100)
    h = {**client._headers(), "Idempotency-Key": "order-42"}
    first = requests.post(api.url("/predict"), headers=h, timeout=30,
                          json={"model_name": "linear_regression", "data": car})
    again = requests.post(api.url("/predict"), headers=h, timeout=30,
                          json={"model_name": "linear_regression", "data": car})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    lr = _prices(client)["linear_regression"]
    assert client.balance() == 100 - lr
    other = requests.post(api.url("/predict"), headers=h, timeout=30,
                          json={"model_name": "gradient_boosting", "data": car})
    assert other.status_code == 422
    hb = {**client._headers(), "Idempotency-Key": "topup-1"}
    for _ in range(3):
        assert requests.post(api.url("/balance"), headers=hb, json={"amount": 5},
                             timeout=30).json()["amount"] == 105 - lr
    assert requests.post(api.url("/balance"), headers=hb, json={"amount": 6},
                         timeout=30).status_code == 422
    assert client.balance() == 105 - lr


def test_a_retry_gets_the_job_its_first_try_committed_when_that_answer_was_lost(
        api: Api, car: dict[str, Any]) -> None:
    """A request that committed its job but never answered (a 503 as PostgreSQL went down, a
    SIGKILLed worker) leaves its key claimed with no answer kept. Its retry gets that job,
    charged once, not a 409 until the claim goes stale; a claim with no job behind it is
    still a request in flight (409)."""
    import psycopg

    client, _ = _signed_in(api, 100)
    lr = _prices(client)["linear_regression"]
    h = {**client._headers(), "Idempotency-Key": "lost-answer"}
    body = {"model_name": "linear_regression", "data": car}
    first = requests.post(api.url("/predict"), headers=h, json=body, timeout=30)
    assert first.status_code == 200
    with psycopg.connect(api.database_url, autocommit=True) as conn:  # the answer never kept
        assert conn.execute("UPDATE api_idempotency SET response = NULL WHERE key = %s",
                            ("lost-answer",)).rowcount == 1
    again = requests.post(api.url("/predict"), headers=h, json=body, timeout=30)
    assert again.status_code == 200, again.text
    assert again.json()["job_id"] == first.json()["job_id"]
    assert client.balance() == 100 - lr  # charged once
    with psycopg.connect(api.database_url, autocommit=True) as conn:  # in flight, no job yet
        conn.execute("INSERT INTO api_idempotency (user_id, route, key, body_sha256, response) "
                     "SELECT user_id, route, 'in-flight', body_sha256, NULL FROM api_idempotency "
                     "WHERE key = 'lost-answer'")
    busy = requests.post(api.url("/predict"), json=body, timeout=30,
                         headers={**h, "Idempotency-Key": "in-flight"})
    assert busy.status_code == 409 and "Retry-After" in busy.headers
    assert client.balance() == 100 - lr


NASTY: list[Any] = [None, "", "ü∂ƒ😀\u0000", -1, 0, 10**40, -(10**40), 1e308, True, [], {},
                    {"a": [1, {"b": None}]}, "x" * 5000]


def test_no_request_makes_the_api_answer_500(api: Api) -> None:
    client, _ = _signed_in(api, 10)
    h = client._headers()
    routes = [("post", "/sign_up"), ("post", "/sign_in"), ("get", "/balance"), ("post", "/balance"),
              ("get", "/predictors"), ("post", "/predict"), ("get", "/predict"),
              ("get", "/history"), ("get", "/jobs/running"), ("get", "/balance/audit"),
              ("get", "/me"), ("post", "/token")]
    seen = set()
    for method, path in routes:
        for value in NASTY:
            for body in (value, {"name": value, "email": value, "password": value},
                         {"new_amount": value}, {"amount": value}, {"job_id": value},
                         {"model_name": value, "data": value},
                         {"model_name": "linear_regression", "data": {"horsepower": value}}):
                r = requests.request(method, api.url(path), headers=h, json=body, timeout=30)
                seen.add(r.status_code)
                assert r.status_code < 500, (method, path, body, r.text)
                assert isinstance(r.json()["detail"] if r.status_code >= 400 else "", str)
        for raw in (b"{not json", b"\xff\xfe", b"[" * 1000):
            r = requests.request(method, api.url(path), headers={**h, "Content-Type": "application/json"},
                                 data=raw, timeout=30)
            assert r.status_code < 500, (method, path, raw, r.text)
    huge = requests.post(api.url("/predict"), headers=h, data=b"{" + b" " * 200_000 + b"}",
                         timeout=30)
    assert huge.status_code == 413
    for params in ({"limit": -1}, {"limit": 10**30}, {"cursor": "🙂"}, {"as_of": "yesterday"},
                   {"job_id": "\u0000"}):
        for path in ("/history", "/balance/audit", "/predict"):
            assert requests.get(api.url(path), headers=h, params=params, timeout=30).status_code < 500
    assert 422 in seen
