"""A model's lifecycle against the real stack: a challenger trained from an operator's CSV,
priced in the shadow on live jobs (never billed, through an inference SIGKILL), compared with
the champion on the same cars, promoted (refused without --force when worse beyond noise),
rolled back; jobs keep the version they were accepted with."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.conftest import Stack
from tests.e2e.conftest import Api, _api, own_database
from tests.e2e.test_api_keys import _account, _bearer, _key
from tests.procs import wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
MODEL = "linear_regression"


@pytest.fixture(scope="module")
def stack(shared_stack: Stack, registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:  # type: ignore[no-untyped-def]
    """A stack of its own (its own registry, database and topics): promotions here change who
    serves, which no other test should see. Every paid job is also priced in the shadow."""
    from model_registry.store import Registry

    root = tmp_path_factory.mktemp("lifecycle-models")
    shutil.copytree(registry.root, root, dirs_exist_ok=True)
    with own_database(shared_stack, "life") as database_url:
        yield from _api(shared_stack, Registry(root), tmp_path_factory, database_url, prefix="life",
                        SHADOW_SHARE="1", CARPRICE_TRAIN_CV="2x1")


def _cli(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=api.procs.env,
                          capture_output=True, text=True, timeout=300)


def _noisy_csv(path: Path) -> Path:
    """The dataset with every price blurred by ±40 % noise: a dealer's worse data."""
    from model_registry.features import DATASET_DIR, DATASET_FILE

    lines = (DATASET_DIR / DATASET_FILE).read_text().splitlines()
    header = lines[0].split(",")
    price_at = header.index("price")
    noise = np.random.default_rng(7).uniform(0.6, 1.4, len(lines) - 1)
    rows = []
    for line, factor in zip(lines[1:], noise, strict=True):
        cells = line.split(",")
        cells[price_at] = f"{float(cells[price_at]) * factor:.0f}"
        rows.append(",".join(cells))
    path.write_text("\n".join([lines[0], *rows]) + "\n")
    return path


def _serving(api: Api, h: dict[str, str]) -> str:
    listed = requests.get(api.url("/predictors"), headers=h, timeout=30).json()["models"]
    return str(next(m["version"] for m in listed if m["model_name"] == MODEL))


def _challengers(api: Api, h: dict[str, str]) -> dict[str, Any]:
    r = requests.get(api.url(f"/predictors/{MODEL}/challengers"), headers=h, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _price(api: Api, key: dict[str, str], car: dict[str, Any], n: int) -> list[str]:
    jobs = []
    for _ in range(n):
        r = requests.post(api.url("/predict"), json={"model_name": MODEL, "data": car}, headers=key,
                          timeout=30)
        assert r.status_code == 200, r.text
        jobs.append(r.json()["job_id"])
    return jobs


def _ended(api: Api, key: dict[str, str], job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        r = requests.get(api.url(f"/predict/{job}?wait=30"), headers=key, timeout=40)
        assert r.status_code == 200, r.text
        if r.json()["status"] in {"finished", "failed"} or time.monotonic() > deadline:
            return dict(r.json())


def test_a_challenger_prices_in_the_shadow_is_promoted_and_rolled_back(
        stack: Api, car: dict[str, Any], tmp_path: Path) -> None:
    api = stack
    h = _account(api, 5000)
    key = _bearer(_key(api, h, ["predict", "read"])["secret"])
    price = next(m["price"] for m in requests.get(api.url("/predictors"), headers=h, timeout=30)
                 .json()["models"] if m["model_name"] == MODEL)

    # a challenger trained from an operator's CSV: the champion keeps serving
    trained = _cli(api, "train", "--data", str(_noisy_csv(tmp_path / "dealer.csv")), "--model", MODEL)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert f"{MODEL} v2 entered as a challenger" in " ".join(trained.stdout.split())
    assert _serving(api, h) == "1"
    made = _challengers(api, h)
    assert made["champion"]["version"] == "1" and made["shadow_share"] == 1.0
    assert [(c["version"], c["data_file"]) for c in made["challengers"]] == [("2", "dealer.csv")]

    # paid jobs are priced by the champion and, in the shadow, by the challenger: unbilled
    jobs = _price(api, key, car, 6)
    ended = [_ended(api, key, j) for j in jobs]
    assert {(j["status"], j["model_version"]) for j in ended} == {("finished", "1")}
    for job in jobs[:3]:  # sale prices for half of them
        r = requests.post(api.url(f"/predict/{job}/outcome"), json={"sold_price": 15000}, headers=key,
                          timeout=30)
        assert r.status_code == 200, r.text

    def compared() -> dict[str, Any] | None:
        rows = _challengers(api, h)["comparisons"]
        return rows[0] if rows and rows[0]["shadowed"] >= 6 and rows[0]["reports"] >= 3 else None

    row = wait_for(compared, timeout=60, what="six shadow prices and three sale reports compared")
    assert (row["version"], row["champion_version"], row["failed"]) == ("2", "1", 0)
    assert row["median_abs_difference"] > 0  # another model, another price
    assert row["mae"] is not None and row["champion_mae"] == pytest.approx(abs(ended[0]["result"] - 15000))
    balance = requests.get(api.url("/balance"), headers=h, timeout=30).json()
    assert balance["amount"] == 5000 - 6 * price and balance["reserved"] == 0

    # inference SIGKILLed with jobs in flight: each is finished and charged once; the shadow
    # never bills (what it loses are samples)
    inference = next(p for p in api.procs.procs if p.args == ["consume", "inference"])
    more = _price(api, key, car, 8)
    inference.kill()
    api.procs.start("consume", "inference")
    assert {_ended(api, key, j)["status"] for j in more} == {"finished"}
    balance = requests.get(api.url("/balance"), headers=h, timeout=30).json()
    assert balance["amount"] == 5000 - 14 * price and balance["reserved"] == 0
    wait_for(lambda: _challengers(api, h)["comparisons"][0]["shadowed"] > 6, timeout=60,
             what="the restarted inference to shadow again")

    # worse on CV beyond its noise: refused without --force, nothing recorded
    refused = _cli(api, "models", "promote", MODEL, "2", "--why", "dealer data")
    assert refused.returncode == 1 and "was not promoted" in refused.stdout
    assert "--force" in refused.stdout and _serving(api, h) == "1"
    promoted = _cli(api, "models", "promote", MODEL, "2", "--why", "dealer data", "--by", "ops@dealer",
                    "--force")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    wait_for(lambda: _serving(api, h) == "2", timeout=30, what="the API to serve the promoted version")
    [new] = _price(api, key, car, 1)
    assert _ended(api, key, new)["model_version"] == "2"
    assert _ended(api, key, jobs[0])["model_version"] == "1"  # accepted jobs keep their version
    listed = requests.get(api.url("/predictors"), headers=h, timeout=30).json()["models"]
    prices = [m["price"] for m in sorted(listed, key=lambda m: m["metrics"]["r2"]["mean"])]
    assert prices == sorted(prices) and len(set(prices)) == len(prices)  # prices follow the rank

    rolled = _cli(api, "models", "rollback", MODEL, "--why", "coverage fell", "--by", "ops@dealer")
    assert rolled.returncode == 0 and "rolled back to v1 (was v2)" in rolled.stdout, rolled.stdout
    wait_for(lambda: _serving(api, h) == "1", timeout=30, what="the API to serve v1 again")
    [after] = _price(api, key, car, 1)
    assert _ended(api, key, after)["model_version"] == "1"
    assert _ended(api, key, new)["model_version"] == "2"
    assert [c["version"] for c in _challengers(api, h)["challengers"]] == ["2"]
    history = _cli(api, "models", "history", MODEL, "--json")
    assert history.returncode == 0, history.stdout + history.stderr
    assert [(r["what"], r["version"], r["from"], r["by"], r["why"], r["forced"])
            for r in json.loads(history.stdout)] == [
        ("promoted", "2", "1", "ops@dealer", "dealer data", True),
        ("rolled back", "1", "2", "ops@dealer", "coverage fell", False)]


@pytest.mark.slow
def test_the_models_page_compares_the_challenger_with_the_champion(stack: Api) -> None:
    """(After the walk above: v2 is a challenger again, with shadow prices and sale reports.)"""
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser import SHOTS, open_page, sign_in, start_ui

    assert _challengers(stack, _account(stack))["comparisons"], "the walk above left no comparison"
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    requests.post(stack.url("/sign_up"), json={"name": "Ops", "email": email, "password": "password-123"},
                  timeout=30).raise_for_status()
    ui, url = start_ui(stack)
    try:
        with sync_playwright() as p:
            browser, page = open_page(p)
            page.goto(url)
            sign_in(page, email)
            page.get_by_role("link", name="Models").click()
            expect(page.get_by_text("Challengers: priced in the shadow beside the champion")).to_be_visible()
            expect(page.get_by_text(re.compile(r"^Each challenger prices 100% of the paid jobs"))
                   ).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=SHOTS / "10-models-challengers.png", full_page=True)
            assert not page.get_by_text("Traceback").count()
            browser.close()
    finally:
        ui.stop()
