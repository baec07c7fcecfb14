"""API keys against the real stack: scopes, revocation on every API process, a rate limit per
key, the secret shown once and stored only as a hash, erasure deleting the keys."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
import pytest
import requests

from tests.e2e.conftest import Api, start_api
from tests.e2e.test_receipts import _audit as audit

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _account(api: Api, credits: int = 100) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    email, password = f"dealer.{tag}@example.com", "password-123"
    requests.post(api.url("/sign_up"), json={"name": "Dealer", "email": email, "password": password},
                  timeout=30).raise_for_status()
    token = requests.post(api.url("/sign_in"), json={"email": email, "password": password},
                          timeout=30).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    requests.post(api.url("/balance"), json={"amount": credits}, headers=h, timeout=30).raise_for_status()
    return h


def _key(api: Api, h: dict[str, str], scopes: list[str], **extra: Any) -> dict[str, Any]:
    r = requests.post(api.url("/keys"), json={"name": "dealer DMS", "scopes": scopes, **extra},
                      headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_key_works_within_its_scopes_and_never_for_the_account_holders_doors(
        api: Api, car: dict[str, Any]) -> None:
    h = _account(api)
    reader = _key(api, h, ["read"])
    assert reader["secret"].startswith("cpk_") and len(reader["secret"]) >= 4 + 32 + 1 + 43
    assert reader["secret"].startswith(reader["prefix"])
    k = _bearer(reader["secret"])
    seen = requests.get(api.url("/balance"), headers=k, timeout=30)
    assert seen.status_code == 200 and seen.json()["amount"] == 100, seen.text
    refused = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                            headers=k, timeout=30)
    assert refused.status_code == 403 and "predict" in refused.json()["detail"]
    for method, path, body in (("POST", "/balance", {"amount": 5}), ("POST", "/keys",
                               {"name": "x", "scopes": ["read"]}), ("GET", "/keys", None),
                               ("DELETE", "/me", {"password": "password-123"})):
        r = requests.request(method, api.url(path), json=body, headers=k, timeout=30)
        assert r.status_code == 403, (method, path, r.text)
    # nothing was spent or erased by those attempts
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == 100

    # a predict key prices a car and reads its job
    pricer = _bearer(_key(api, h, ["predict"])["secret"])
    job = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                        headers=pricer, timeout=30)
    assert job.status_code in (200, 201, 202), job.text
    job_id = job.json()["job_id"]
    ended = requests.get(api.url(f"/predict/{job_id}?wait=30"), headers=pricer, timeout=40).json()
    assert ended["status"] == "finished" and ended["result"] > 0
    assert requests.get(api.url("/balance"), headers=pricer, timeout=30).status_code == 403

    # the statement and the receipt name the key that spent the credits
    pricer_key = next(x for x in requests.get(api.url("/keys"), headers=h, timeout=30).json()["keys"]
                      if x["scopes"] == ["predict"])
    label = f"dealer DMS ({pricer_key['prefix']})"
    lines = requests.get(api.url("/balance/statement"), headers=h, timeout=30).json()["lines"]
    assert {(x["kind"], x["key"]) for x in lines if x["job_id"] == job_id} == {
        ("reservation", label), ("capture", label)}
    assert [x["key"] for x in lines if x["kind"] == "deposit"] == [""]
    csv_lines = requests.get(api.url("/balance/statement"), params={"format": "csv"}, headers=h,
                             timeout=30).text.splitlines()
    assert csv_lines[0].endswith(",detail,key") and sum(label in x for x in csv_lines) == 2
    made = requests.get(api.url(f"/predict/{job_id}/receipt"), headers=h, timeout=30)
    assert made.json()["api_key"] == {"key_id": pricer_key["key_id"], "name": label}
    checked = audit(api, job_id, stdin=made.text)  # the receipt, key and all, proves out
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # the listing shows prefix, name, scopes and last use, never the secret or its hash
    listed = requests.get(api.url("/keys"), headers=h, timeout=30).json()["keys"]
    assert [x["scopes"] for x in listed] == [["read"], ["predict"]]
    assert all("secret" not in x for x in listed) and all(x["last_used_at"] for x in listed)
    with psycopg.connect(api.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM api_keys WHERE secret_hash IS NOT NULL").fetchone()
        leaked = conn.execute("SELECT count(*) FROM carprice_events WHERE convert_from(state, 'UTF8') "
                              "LIKE %s", (f"%{reader['secret'][16:]}%",)).fetchone()
    assert stored and stored[0] >= 2
    assert leaked == (0,)


def test_a_fleet_priced_with_a_key_is_named_on_every_line(api: Api, car: dict[str, Any]) -> None:
    h = _account(api)
    made = _key(api, h, ["batch"])
    fleet = requests.post(api.url("/predict/batch"), json={"model_name": "linear_regression",
                                                          "cars": [car, car, car]},
                          headers=_bearer(made["secret"]), timeout=60)
    assert fleet.status_code == 202, fleet.text
    label = f"dealer DMS ({made['prefix']})"
    lines = requests.get(api.url("/balance/statement"), headers=h, timeout=30).json()["lines"]
    held = [x for x in lines if x["kind"] == "reservation"]
    assert len(held) == 3 and {x["key"] for x in held} == {label}


def test_bad_key_requests_get_422_naming_the_field(api: Api) -> None:
    h = _account(api)
    for body, field in (({"name": "x", "scopes": ["admin"]}, "scopes"),
                        ({"name": "", "scopes": ["read"]}, "name"),
                        ({"name": "x", "scopes": []}, "scopes"),
                        ({"name": "x", "scopes": ["read"], "rate_limit_per_minute": 0},
                         "rate_limit_per_minute")):
        r = requests.post(api.url("/keys"), json=body, headers=h, timeout=30)
        assert r.status_code == 422 and field in r.json()["detail"], (body, r.text)
    assert requests.get(api.url("/balance"), headers=_bearer("cpk_" + "0" * 32 + "_nope"),
                        timeout=30).status_code == 401
    assert requests.delete(api.url(f"/keys/{uuid.uuid4()}"), headers=h, timeout=30).status_code == 404


def test_a_revoked_key_stops_at_once_on_another_api_process(api: Api) -> None:
    base = start_api(api.procs) + "/api/v1"  # a second API process
    other = api.procs.procs[-1]
    try:
        h = _account(api)
        made = _key(api, h, ["read"])
        k = _bearer(made["secret"])
        assert requests.get(f"{base}/balance", headers=k, timeout=30).status_code == 200
        assert requests.delete(api.url(f"/keys/{made['key_id']}"), headers=h, timeout=30).status_code == 204
        # no wait: the other process reads the key's row on every request
        r = requests.get(f"{base}/balance", headers=k, timeout=30)
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
        assert requests.get(api.url("/balance"), headers=k, timeout=30).status_code == 401
        listed = requests.get(f"{base}/keys", headers=h, timeout=30).json()["keys"]
        assert listed[0]["revoked_at"] is not None
    finally:
        other.stop()


def test_a_stream_signed_with_a_key_ends_when_the_key_is_revoked(api: Api) -> None:
    h = _account(api)
    made = _key(api, h, ["read"])
    lines: list[str] = []
    with requests.get(api.url("/jobs/events"), headers=_bearer(made["secret"]), stream=True,
                      timeout=30) as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        assert requests.delete(api.url(f"/keys/{made['key_id']}"), headers=h,
                               timeout=30).status_code == 204
        for line in stream.iter_lines(decode_unicode=True):  # pings come every 15 s at least
            lines.append(line)
            if line == "event: end" or time.monotonic() - started > 40:
                break
        ended = time.monotonic() - started
    assert "event: end" in lines and ended < 15  # at its next look (every 5 s), not never


def test_each_key_has_its_own_rate_limit(api: Api) -> None:
    h = _account(api)
    slow, other = _key(api, h, ["read"], rate_limit_per_minute=3), _key(api, h, ["read"])
    codes = [requests.get(api.url("/balance"), headers=_bearer(slow["secret"]), timeout=30)
             for _ in range(4)]
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    assert 1 <= int(codes[-1].headers["Retry-After"]) <= 60
    # the account's other key and its password token are not limited by it
    assert requests.get(api.url("/balance"), headers=_bearer(other["secret"]), timeout=30).status_code == 200
    assert requests.get(api.url("/balance"), headers=h, timeout=30).status_code == 200


def test_erasing_the_account_deletes_its_keys(api: Api) -> None:
    h = _account(api)
    made = _key(api, h, ["read", "predict"])
    erased = requests.delete(api.url("/me"), json={"password": "password-123"}, headers=h, timeout=30)
    assert erased.status_code == 200, erased.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if requests.get(api.url("/balance"), headers=_bearer(made["secret"]), timeout=30).status_code == 401:
            break
        time.sleep(0.1)
    assert requests.get(api.url("/balance"), headers=_bearer(made["secret"]), timeout=30).status_code == 401
    with psycopg.connect(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys WHERE key_id = %s",
                            (made["key_id"],)).fetchone() == (0,)
