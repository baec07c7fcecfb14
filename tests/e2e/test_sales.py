"""Sale prices reported back against the real stack: on a job (with an API key), corrected,
in a fleet CSV's sold_price column, and the live figures every model version gets from them."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Api
from tests.e2e.test_api_keys import _account, _bearer, _key
from tests.e2e.test_ranges import _batch_when_done, _dataset_csv

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
MODEL = "linear_regression"


def _live(api: Api, h: dict[str, str]) -> dict[str, Any]:
    r = requests.get(api.url(f"/predictors/{MODEL}/live"), headers=h, timeout=30)
    assert r.status_code == 200, r.text
    versions = r.json()["versions"]
    return versions[-1] if versions else {"reports": 0, "mae": None, "ranged": 0, "coverage": None}


def _live_when(api: Api, h: dict[str, str], reports: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _live(api, h)
        if now["reports"] >= reports:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the live figures never counted {reports} reports: {now}")


def test_sale_prices_reported_with_a_key_become_live_figures(api: Api, car: dict[str, Any]) -> None:
    h = _account(api, 1000)
    before = _live(api, h)
    key = _bearer(_key(api, h, ["predict"])["secret"])
    jobs = []
    for _ in range(3):
        r = requests.post(api.url("/predict"), json={"model_name": MODEL, "data": car}, headers=key,
                          timeout=30)
        jobs.append(requests.get(api.url(f"/predict/{r.json()['job_id']}?wait=30"), headers=key,
                                 timeout=40).json())
    assert all(j["status"] == "finished" for j in jobs)
    price, rng = jobs[0]["result"], jobs[0]["interval"]
    sold = [price * 1.10, price, price * 3]  # 10 % over, exact, far outside the range
    for job, s in zip(jobs, sold, strict=True):
        r = requests.post(api.url(f"/predict/{job['job_id']}/outcome"), json={"sold_price": s},
                          headers=key, timeout=30)
        assert r.status_code == 200 and r.json()["recorded"], r.text
    # a correction supersedes the first report: the latest counts
    fixed = requests.post(api.url(f"/predict/{jobs[2]['job_id']}/outcome"),
                          json={"sold_price": price * 0.95}, headers=key, timeout=30).json()
    assert fixed["superseded"] == pytest.approx(price * 3)
    sold[2] = price * 0.95

    n0 = before["reports"]
    errors = [abs(price - s) for s in sold]
    expected_mae = ((before["mae"] or 0) * n0 + sum(errors)) / (n0 + 3)
    after = _live_when(api, h, n0 + 3)
    deadline = time.monotonic() + 30  # the correction is projected after the three reports
    while after["mae"] != pytest.approx(expected_mae, rel=1e-6) and time.monotonic() < deadline:
        time.sleep(0.2)
        after = _live(api, h)
    assert after["reports"] == n0 + 3
    assert after["mae"] == pytest.approx(expected_mae, rel=1e-6)
    inside = sum(rng["low"] <= s <= rng["high"] for s in sold)
    covered_before = round((before["coverage"] or 0) * before["ranged"])
    assert after["coverage"] == pytest.approx((covered_before + inside) / (before["ranged"] + 3))
    low, high = after["coverage_ci"]
    assert 0 <= low <= after["coverage"] <= high <= 1
    assert after["mae_ci"][0] <= after["mae"] <= after["mae_ci"][1]


def test_a_fleet_csv_with_sale_prices_counts_them_once_its_rows_are_priced(api: Api) -> None:
    h = _account(api, 1000)
    before = _live(api, h)["reports"]
    rows = list(csv.DictReader(io.StringIO(_dataset_csv(4))))
    out = io.StringIO()
    writer = csv.DictWriter(out, [*rows[0].keys(), "sold_price"])
    writer.writeheader()
    for i, row in enumerate(rows):  # the dataset's own price as the sale price; row 3 unsold
        writer.writerow({**row, "sold_price": row["price"] if i < 3 else ""})
    r = requests.post(api.url("/predict/batch"), data={"model_name": MODEL},
                      files={"file": ("fleet.csv", out.getvalue(), "text/csv")}, headers=h, timeout=60)
    assert r.status_code == 202, r.text
    assert _batch_when_done(api, h, r.json()["batch_id"])["done"] == 4
    assert _live_when(api, h, before + 3)["reports"] == before + 3
    time.sleep(1)
    assert _live(api, h)["reports"] == before + 3  # the unsold row is not a report


def test_bad_reports_are_refused_and_nothing_is_recorded(api: Api, car: dict[str, Any]) -> None:
    h, other = _account(api), _account(api)
    job = requests.post(api.url("/predict"), json={"model_name": MODEL, "data": car}, headers=h,
                        timeout=30).json()["job_id"]
    for bad in (-1, 0, "a lot", None):
        r = requests.post(api.url(f"/predict/{job}/outcome"), json={"sold_price": bad}, headers=h,
                          timeout=30)
        assert r.status_code == 422 and "sold_price" in r.json()["detail"], r.text
    assert requests.post(api.url(f"/predict/{job}/outcome"), json={"sold_price": 9000},
                         headers=other, timeout=30).status_code == 404
    reader = _bearer(_key(api, h, ["read"])["secret"])
    assert requests.post(api.url(f"/predict/{job}/outcome"), json={"sold_price": 9000},
                         headers=reader, timeout=30).status_code == 403
    assert requests.get(api.url("/predictors/nope/live"), headers=h, timeout=30).status_code == 404
    bad_fleet = "\n".join(_dataset_csv(2).splitlines()) + "\n"
    lines = bad_fleet.splitlines()
    lines = [lines[0] + ",sold_price", lines[1] + ",lots", lines[2] + ",9000"]
    r = requests.post(api.url("/predict/batch"), data={"model_name": MODEL},
                      files={"file": ("fleet.csv", "\n".join(lines) + "\n", "text/csv")}, headers=h,
                      timeout=60)
    assert r.status_code == 422 and "row 0: sold_price" in r.json()["detail"], r.text
    # refused whole: nothing charged for it (100 less the one job's hold)
    price = next(m["price"] for m in requests.get(api.url("/predictors"), headers=h,
                                                  timeout=30).json()["models"] if m["model_name"] == MODEL)
    assert requests.get(api.url("/balance"), headers=h, timeout=30).json()["amount"] == 100 - price


def test_drift_shows_on_the_api_in_metrics_and_as_a_warning(api: Api, car: dict[str, Any]) -> None:
    # the e2e stack prices the same sample car over and over: far from the training data
    h = _account(api, 100)
    for _ in range(3):
        job = requests.post(api.url("/predict"), json={"model_name": MODEL, "data": car}, headers=h,
                            timeout=30).json()["job_id"]
        assert requests.get(api.url(f"/predict/{job}?wait=30"), headers=h,
                            timeout=40).json()["status"] == "finished"
    r = requests.get(api.url(f"/predictors/{MODEL}/drift"), headers=h, timeout=60)
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["cars"] >= 3 and made["window"] == 1000 and made["threshold"] == 0.25
    assert made["min_cars"] == 3  # DRIFT_MIN_CARS of the e2e stack
    assert {f["feature"] for f in made["features"]} >= {"horsepower", "brand", "curbweight"}
    assert made["drifting"] and made["features"][0]["psi"] > 0.25  # one car is not a population
    metrics = requests.get(f"{api.base}/metrics", timeout=60).text
    assert f'carprice_feature_psi{{feature="horsepower",model="{MODEL}"}}' in metrics
    assert f'carprice_drifting_features{{model="{MODEL}"}}' in metrics
    logs = "".join(p.text() for p in api.procs.procs if p.args[0] == "api")
    assert f"drift: {MODEL}: the last" in logs
    assert requests.get(api.url("/predictors/nope/drift"), headers=h, timeout=30).status_code == 404
