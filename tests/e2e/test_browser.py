"""A new user in a real browser (Debian's Chromium, driven by Playwright) against the whole stack."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.proc import free_port
from model_registry.features import DATASET_DIR, DATASET_FILE
from tests import REPO_ROOT
from tests.e2e.conftest import Api
from tests.procs import Proc, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = REPO_ROOT / "test-output" / "screenshots"


def start_ui(api: Api) -> tuple[Proc, str]:
    """The dashboard against `api`, once it answers; (its process, its URL)."""
    port = free_port()
    proc = api.procs.start("ui", "--port", str(port), "--api-url", api.base)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/_stcore/health", timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_for(up, timeout=60, what="the Streamlit UI")
    return proc, url


def open_page(p: Any) -> tuple[Any, Any]:
    """(browser, page): Debian's Chromium, a large window, patient timeouts."""
    from playwright.sync_api import expect

    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)  # a loaded CI machine is slow to rerun scripts
    return browser, page


def sign_in(page: Any, email: str, password: str = "password-123") -> None:  # noqa: S107 - a test account
    """Sign in on the dashboard's first page, as an account with no credits yet."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Sign in").click()
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("stMetricValue")).to_have_text("0 credits")


@pytest.fixture(scope="module")
def ui_url(api: Api) -> Iterator[str]:
    proc, url = start_ui(api)
    yield url
    proc.stop()


def test_a_new_user_does_everything_in_a_browser(ui_url: str, api: Api, car: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    with sync_playwright() as p:
        browser, page = open_page(p)
        page.goto(ui_url)
        page.get_by_role("tab", name="Create account").click()
        page.get_by_label("Your name").fill("Browser User")
        page.get_by_label("Your email").fill(email)
        page.get_by_label("Choose a password (at least 8 characters)").fill("password-123")
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_text("Account created")).to_be_visible()
        page.screenshot(path=SHOTS / "1-sign-up.png")

        sign_in(page, email)

        page.get_by_role("button", name="Top up").click()
        expect(page.get_by_test_id("stMetricValue")).to_have_text("50 credits")  # read-your-writes
        page.screenshot(path=SHOTS / "2-predict.png", full_page=True)

        page.get_by_role("button", name=re.compile(r"Predict with 1 model")).click()
        # the price shows right there, with its range (long-polled, no reload)
        expect(page.get_by_text(re.compile(r"^80% range: \$[0-9,]+ to \$[0-9,]+$"))).to_be_visible(
            timeout=60_000)
        expect(page.get_by_text(re.compile(r"linear_regression v\d+: \$[0-9,]+"))).to_be_visible()
        expect(page.get_by_test_id("stMetricValue")).to_have_text("40 credits")
        page.wait_for_timeout(1000)  # the range chart
        page.screenshot(path=SHOTS / "2b-predict-result.png", full_page=True)

        page.get_by_role("link", name="Running jobs").click()
        expect(page.get_by_text("No job is running.")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Just finished")).to_be_visible()
        expect(page.get_by_text("1 of your latest jobs ended")).to_be_visible()
        # a job submitted elsewhere (another device) shows up here by itself: pushed, no reload
        token = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                              timeout=30).json()["token"]
        requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                      headers={"Authorization": f"Bearer {token}"}, timeout=30).raise_for_status()
        expect(page.get_by_text("2 of your latest jobs ended")).to_be_visible()
        page.screenshot(path=SHOTS / "3-running.png", full_page=True)

        page.get_by_role("link", name="History").click()
        summary = re.compile(r"2 jobs: 2 finished\. Latest price: \$[0-9,]+\.\d\d")
        expect(page.get_by_text(summary)).to_be_visible()
        expect(page.get_by_text("Features", exact=True)).to_be_visible()
        expect(page.get_by_text("curbweight", exact=True).first).to_be_visible()  # the job's features
        page.screenshot(path=SHOTS / "4-history.png", full_page=True)

        page.get_by_role("link", name="Ledger").click()
        expect(page.get_by_text(re.compile("Consistent: replayed balance 30"))).to_be_visible()
        expect(page.get_by_text("Balance then")).to_be_visible()  # as of the last entry, replayed
        expect(page.get_by_role("button", name="Download the statement (CSV)")).to_be_visible()
        expect(page.get_by_test_id("stMetricValue").nth(1)).to_have_text("30 credits")
        expect(page.get_by_text("Entries", exact=True)).to_be_visible()
        page.wait_for_timeout(1500)  # let the charts draw before the screenshot
        page.screenshot(path=SHOTS / "5-ledger.png", full_page=True)

        page.get_by_role("link", name="Models").click()
        expect(page.get_by_text("Predicted vs actual (out of fold)")).to_be_visible()
        expect(page.get_by_text(re.compile(r"-fold CV repeated"))).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=SHOTS / "6-models.png", full_page=True)

        page.get_by_role("link", name="Fleet").click()
        fleet = SHOTS.parent / "fleet.csv"
        lines = (DATASET_DIR / DATASET_FILE).read_text().splitlines()
        fleet.write_text("\n".join(lines[:4]) + "\n")  # 3 cars of the dataset, as they are
        page.locator("input[type=file]").set_input_files(str(fleet))
        page.get_by_role("button", name="Price the fleet").click()
        expect(page.get_by_text("3 cars priced.")).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stMetricValue")).to_have_text("0 credits")
        expect(page.get_by_role("button", name="Download the results (CSV)")).to_be_visible()
        page.screenshot(path=SHOTS / "7-fleet.png", full_page=True)

        # an API key for an integration: issued (the secret shown once), used, then revoked
        page.get_by_role("link", name="API keys").click()
        expect(page.get_by_text("No keys yet.")).to_be_visible()
        page.get_by_label("Name").fill("dealer DMS")
        page.get_by_role("button", name="Issue key").click()
        expect(page.get_by_text("Copy it now: it will not be shown again.")).to_be_visible()
        secret = page.locator("pre").filter(has_text="cpk_").first.inner_text().strip()
        assert secret.startswith("cpk_") and "…" not in secret  # the secret, not its prefix
        signed = {"Authorization": f"Bearer {secret}"}
        assert requests.get(api.url("/history"), headers=signed, timeout=30).status_code == 200
        page.get_by_role("button", name="I have copied it").click()
        expect(page.get_by_text(re.compile(r"predict, read · 600/min · created .* · last used "
                                           r"\d{4}-.* · live"))).to_be_visible()
        page.screenshot(path=SHOTS / "8-api-keys.png", full_page=True)
        page.get_by_role("button", name="Revoke").click()
        expect(page.get_by_text(re.compile(r"· revoked \d{4}-"))).to_be_visible()
        assert requests.get(api.url("/history"), headers=signed, timeout=30).status_code == 401

        # a sale price reported back shows on the Models page, beside the CV figures
        token = requests.post(api.url("/sign_in"), json={"email": email, "password": "password-123"},
                              timeout=30).json()["token"]
        mine = {"Authorization": f"Bearer {token}"}
        job = next(j for j in requests.get(api.url("/history"), headers=mine, timeout=30).json()["jobs"]
                   if j["status"] == "finished")
        requests.post(api.url(f"/predict/{job['job_id']}/outcome"), json={"sold_price": 12_345},
                      headers=mine, timeout=30).raise_for_status()
        page.get_by_role("link", name="Models").click()
        expect(page.get_by_text("Live accuracy: the prices cars actually sold for")).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Every user's reports"))).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=SHOTS / "9-models-live.png", full_page=True)
        assert not page.get_by_text("Traceback").count()
        browser.close()
