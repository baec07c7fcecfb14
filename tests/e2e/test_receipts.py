"""Receipts over HTTP, checked by `carprice audit receipt` against the real event store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from model_registry.store import sha256_of
from tests.e2e.conftest import Api

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _user(api: Api, credits: int) -> dict[str, str]:
    email = f"receipt-{uuid.uuid4().hex[:10]}@example.com"
    requests.post(api.url("/sign_up"), json={"name": "Rita", "email": email, "password": "password-123"},
                  timeout=30).raise_for_status()
    token = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                          timeout=30).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    if credits:
        requests.post(api.url("/balance"), json={"amount": credits}, headers=h, timeout=30).raise_for_status()
    return h


def _audit(api: Api, job: str, receipt: Path | None = None, stdin: str | None = None,
           registry: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**api.procs.env, **({"MODEL_REGISTRY_DIR": str(registry)} if registry else {})}
    args = [job, *([str(receipt)] if receipt else []), *(["-"] if stdin is not None else [])]
    return subprocess.run([sys.executable, "-m", "cli.main", "audit", "receipt", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_a_receipt_proves_the_job_and_a_tampered_one_is_caught(  # type: ignore[no-untyped-def]
    api: Api, registry, car: dict[str, Any], tmp_path: Path
) -> None:
    h = _user(api, 100)
    r = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                      headers=h, timeout=30)
    job = r.json()["job_id"]
    ended = requests.get(api.url(f"/predict/{job}?wait=25"), headers=h, timeout=60).json()
    assert ended["status"] == "finished"
    receipt = requests.get(api.url(f"/predict/{job}/receipt"), headers=h, timeout=30)
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    price = body["credits"]["price"]
    assert body["credits"]["paid"] == body["credits"]["held"] == price > 0
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == 100 - price
    card = registry.root / "linear_regression" / f"v{body['model']['version']}"
    assert body["model"]["card_sha256"] == sha256_of(card / "card.json")
    assert body["model"]["artifact_sha256"] == sha256_of(card / "model.joblib")
    # each event is where the receipt says, with the bytes it says
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        for e in body["events"]:
            position, = conn.execute("SELECT notification_id FROM carprice_events WHERE "
                                     "originator_id = %s AND originator_version = %s",
                                     (e["aggregate_id"], e["version"])).fetchone()  # type: ignore[misc]
            assert position == e["position"]
    assert [e["type"] for e in body["events"]] == ["job.requested.v1", "wallet.reserved.v1",
                                                   "job.completed.v1", "wallet.captured.v1"]

    kept = tmp_path / "receipt.json"
    kept.write_text(receipt.text)
    checked = _audit(api, job, kept)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "verified against the event store" in checked.stdout
    assert _audit(api, job, stdin=receipt.text).returncode == 0  # the API's answer, piped

    forged = json.loads(receipt.text)
    forged["credits"]["paid"] = 1
    forged["result"]["price"] = forged["result"]["price"] * 2
    caught = _audit(api, job, stdin=json.dumps(forged))
    assert caught.returncode == 1
    assert "credits.paid: the receipt says 1, the store says " + str(price) in caught.stdout
    assert "result.price" in caught.stdout

    # the model it names, swapped on disk, no longer matches its receipt
    swapped = tmp_path / "registry"
    shutil.copytree(registry.root, swapped)
    artifact = swapped / "linear_regression" / f"v{body['model']['version']}" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    replaced = _audit(api, job, kept, registry=swapped)
    assert replaced.returncode == 1 and "no longer matches" in replaced.stdout, replaced.stdout


def test_a_receipt_is_only_its_owner_s(api: Api, car: dict[str, Any]) -> None:
    h = _user(api, 100)
    job = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                        headers=h, timeout=30).json()["job_id"]
    other = _user(api, 0)
    assert requests.get(api.url(f"/predict/{job}/receipt"), headers=other, timeout=30).status_code == 404
    assert requests.get(api.url(f"/predict/{uuid.uuid4()}/receipt"), headers=h, timeout=30).status_code == 404
    assert requests.get(api.url("/predict/not-a-job/receipt"), headers=h, timeout=30).status_code == 404
    assert requests.get(api.url(f"/predict/{job}/receipt"), timeout=30).status_code == 401
    missing = _audit(api, str(uuid.uuid4()))
    assert missing.returncode == 1 and "no job" in missing.stdout
    assert _audit(api, "not-a-job").returncode == 2
