"""Each dashboard page with streamlit's AppTest, against a handwritten fake API client."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui.client import ApiError

SCHEMA = {
    "horsepower": {"kind": "numeric", "dtype": "int", "min": 48, "max": 288, "allowed_min": 0,
                   "allowed_max": 528, "default": 95},
    "fueltype": {"kind": "categorical", "categories": ["diesel", "gas"], "default": "gas"},
    "brand": {"kind": "categorical", "categories": ["audi", "toyota"], "default": "toyota"},
    "model": {"kind": "text", "by_brand": {"toyota": ["corolla", "corona"], "audi": ["100ls"]},
              "default": "corolla"},
}
JOB = {"job_id": "j1", "status": "finished", "model_name": "linear_regression", "model_version": "1",
       "price": 10, "created_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:01Z",
       "result": 15189.5, "error": None, "features": {"horsepower": 111}}


class FakeApi:
    """Answers like the API; records what the page sent."""

    def __init__(self, balance: int = 50, fail_with: ApiError | None = None) -> None:
        self.token: str | None = "t"
        self.stalled_projections: dict[str, Any] = {}
        self._balance = balance
        self.fail_with = fail_with
        self.sent: list[tuple[str, Any]] = []

    def _maybe_fail(self) -> None:
        if self.fail_with:
            raise self.fail_with

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        if password != "right-password":
            raise ApiError(401, "invalid email or password")
        return {"name": "Ann", "email": email, "access_token": "t"}

    def sign_up(self, name: str, email: str, password: str) -> dict[str, Any]:
        raise ApiError(409, "this email is already registered")

    def balance(self) -> int:
        self._maybe_fail()
        return self._balance

    def stalled(self) -> dict[str, Any]:
        return self.stalled_projections

    def wallet(self) -> dict[str, Any]:
        self._maybe_fail()
        return {"amount": self._balance, "available": self._balance, "reserved": 25,
                "promotional": 5}

    def erase_me(self, password: str) -> dict[str, Any]:
        if password != "password-123":
            raise ApiError(403, "password: it does not match this account; nothing was erased")
        self.sent.append(("erase_me", password))
        return {"erased": True}

    def receipt(self, job_id: str) -> bytes:
        self.sent.append(("receipt", job_id))
        return b'{"job_id": "%s"}' % job_id.encode()

    def statement_csv(self) -> bytes:
        return b"time,kind,amount,job_id,model,balance\n"

    def balance_as_of(self, when: str) -> int:
        self.sent.append(("as_of", when))
        return 40

    def deposit(self, amount: int) -> int:
        self._balance += amount
        return self._balance

    def models(self) -> list[dict[str, Any]]:
        self._maybe_fail()
        return [{"model_name": "linear_regression", "price": 10, "version": "1",
                 "metrics": {"r2": {"mean": 0.89}, "rmse": {"mean": 2400}, "mae": {"mean": 1500}}},
                {"model_name": "random_forest", "price": 40, "version": "1",
                 "metrics": {"r2": {"mean": 0.92}, "rmse": {"mean": 2100}, "mae": {"mean": 1400}}}]

    prices = {"linear_regression": 10, "gradient_boosting": 25, "random_forest": 40}

    def card(self, name: str) -> dict[str, Any]:
        return {"model_name": name, "version": "1", "price": self.prices.get(name, 10),
                "input_schema": SCHEMA,
                "cv": {"n_splits": 5, "n_repeats": 5},
                "training_rows": 205, "metrics": {"r2": {"mean": 0.9}, "rmse": {"mean": 2000},
                                                  "mae": {"mean": 1500}},
                "oof": [[10000.0, 10500.0], [20000.0, 19000.0]]}

    def live(self, name: str) -> dict[str, Any]:
        versions = [{"version": "1", "reports": 40, "mae": 1650.0, "mae_ci": [1300.0, 2000.0],
                     "mape": 0.12, "mape_ci": [0.1, 0.14], "ranged": 40, "coverage": 0.75,
                     "coverage_ci": [0.6, 0.86]}] if name == "linear_regression" else []
        return {"model_name": name, "versions": versions}

    def drift(self, name: str) -> dict[str, Any]:
        features = [{"feature": "horsepower", "psi": 0.4, "unseen_share": 0.0},
                    {"feature": "brand", "psi": 0.05, "unseen_share": 0.02}]
        return {"model_name": name, "window": 1000, "cars": 120, "threshold": 0.25,
                "drifting": ["horsepower"] if name == "linear_regression" else [], "features": features}

    def challengers(self, name: str) -> dict[str, Any]:
        card = {"version": "1", "cv_r2": 0.9, "cv_r2_std": 0.02, "cv_mae": 1500.0, "data_file": "",
                "training_rows": 205, "created_at": "2026-12-01T10:00:00Z"}
        if name != "linear_regression":
            return {"model_name": name, "champion": card, "challengers": [], "shadow_share": 0.1,
                    "comparisons": []}
        return {"model_name": name, "champion": card, "shadow_share": 0.1,
                "challengers": [{**card, "version": "2", "cv_r2": 0.85, "data_file": "dealer.csv"}],
                "comparisons": [{"version": "2", "champion_version": "1", "shadowed": 30, "failed": 1,
                                 "median_abs_difference": 420.0, "median_difference": -50.0,
                                 "reports": 6, "mae": 1800.0, "mae_ci": None, "champion_mae": 1500.0,
                                 "champion_mae_ci": None, "coverage": 0.5, "coverage_ci": None,
                                 "champion_coverage": 0.83, "champion_coverage_ci": None}]}

    keys_made: list[dict[str, Any]]

    def keys(self) -> list[dict[str, Any]]:
        return list(getattr(self, "keys_made", []))

    def issue_key(self, name: str, scopes: list[str], rate_limit_per_minute: int) -> dict[str, Any]:
        made = {"key_id": f"k{len(self.keys())}", "prefix": "cpk_0123abcd", "name": name,
                "scopes": scopes, "rate_limit_per_minute": rate_limit_per_minute,
                "created_at": "2026-12-07T10:00:00Z", "last_used_at": None, "revoked_at": None}
        self.keys_made = [*self.keys(), made]
        return {**made, "secret": "cpk_" + "0123abcd" * 4 + "_s3cr3t"}

    def revoke_key(self, key_id: str) -> bool:
        self.keys_made = [{**k, "revoked_at": "2026-12-07T10:05:00Z"} if k["key_id"] == key_id else k
                          for k in self.keys()]
        return True

    def predict(self, name: str, data: dict[str, Any], explain: bool = False) -> dict[str, Any]:
        self.sent.append((name, data))
        self.explained = explain
        if name == "random_forest":
            raise ApiError(402, "not enough credits: random_forest costs 40 credits and your balance is 5")
        return {"job_id": "j1", "price": 10, "balance": 40}

    def running(self) -> list[dict[str, Any]]:
        self._maybe_fail()
        return [{**JOB, "status": "queued", "result": None, "finished_at": None}]

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        return {**JOB, "job_id": job_id, "interval": {"low": 13000.0, "high": 17500.0, "level": 0.8},
                "explanation": {"base": 12000.0, "contributions": [
                    {"feature": "horsepower", "value": 95, "effect": 2189.5},
                    {"feature": "brand", "value": "toyota", "effect": 1000.0}]}}

    def next_update(self, after: str | None, wait: float) -> str | None:
        self.sent.append(("next_update", after))
        return "7"  # an update came: the page draws again

    def history(self, limit: int = 500) -> list[dict[str, Any]]:
        self._maybe_fail()
        return [JOB, {**JOB, "job_id": "j2", "status": "failed", "result": None,
                      "error": "model error", "model_name": "random_forest"}]

    def audit(self) -> dict[str, Any]:
        self._maybe_fail()
        return {"consistent": True, "replayed_balance": 40, "projected_balance": 40, "entries": [
            {"time": "2026-12-01T10:00:00Z", "type": "Deposited", "amount": 50, "balance": 50,
             "detail": "", "job_id": None},
            {"time": "2026-12-01T10:00:01Z", "type": "Charged", "amount": -10, "balance": 40,
             "detail": "linear_regression", "job_id": "j1"},  # a wallet from before holds
            {"time": "2026-12-01T10:00:02Z", "type": "Granted", "amount": 5, "balance": 45,
             "credits": 5, "detail": "welcome", "job_id": None},
            {"time": "2026-12-01T10:00:03Z", "type": "Reserved", "amount": -25, "balance": 20,
             "credits": 25, "reserved": 25, "detail": "gradient_boosting", "job_id": "j2"},
            {"time": "2026-12-01T10:00:04Z", "type": "Captured", "amount": 0, "balance": 20,
             "credits": 25, "detail": "", "job_id": "j2"},
            {"time": "2026-12-01T10:00:05Z", "type": "Reserved", "amount": -10, "balance": 10,
             "credits": 10, "reserved": 10, "detail": "linear_regression", "job_id": "j3"},
            {"time": "2026-12-01T10:00:59.5Z", "type": "Released", "amount": 10, "balance": 20,
             "credits": 10, "detail": "model error", "job_id": "j3"}],
            "spend_per_model": [
                {"model": "gradient_boosting", "spent": 25, "on_hold": 0, "given_back": 0},
                {"model": "linear_regression", "spent": 10, "on_hold": 0, "given_back": 10}]}


def _page(name: str, fake: FakeApi, signed_in: bool = True) -> AppTest:
    def script(page: str) -> None:
        from ui import views

        getattr(views, page)()

    at = AppTest.from_function(script, args=(name,), default_timeout=30)
    at.session_state["client"] = fake
    if signed_in:
        at.session_state["user"] = {"name": "Ann", "email": "ann@example.com"}
    return at.run()


def test_sign_in_errors_are_messages_and_success_keeps_the_user() -> None:
    fake = FakeApi()
    at = _page("account", fake, signed_in=False)
    at.text_input[0].input("ann@example.com")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["invalid email or password"]
    at.text_input[1].input("right-password")
    at.button[0].click().run()
    assert at.session_state["user"]["name"] == "Ann"
    assert not at.exception


def test_predict_form_is_built_from_the_card_and_explains_missing_credits() -> None:
    fake = FakeApi()
    at = _page("predict", fake)
    assert not at.exception
    labels = [w.label for w in at.number_input] + [w.label for w in at.selectbox]
    assert set(labels) >= {"horsepower", "fueltype", "brand", "model"}
    hp = next(w for w in at.number_input if w.label == "horsepower")
    assert (hp.min, hp.max, hp.value) == (0, 528, 95)
    model_box = next(w for w in at.selectbox if w.label == "model")
    assert model_box.options == ["corolla", "corona"]  # the models of the chosen brand
    at.multiselect[0].set_value(["linear_regression", "random_forest"]).run()
    at.button[0].click().run()
    assert [n for n, _ in fake.sent] == ["linear_regression", "random_forest"]
    assert fake.sent[0][1]["brand"] == "toyota" and fake.sent[0][1]["horsepower"] == 95
    assert "10 credits charged" in at.success[0].value
    assert "costs 40 credits" in at.warning[0].value and "Top up" in at.warning[0].value
    # the price is shown right there, with its range and the explanation
    assert any("$15,190" in m.value for m in at.markdown)
    assert any("80% range: $13,000 to $17,500" in c.value for c in at.caption)
    assert any("each bar is what a feature" in c.value for c in at.caption)


def test_running_jobs_history_ledger_and_models_render_without_tracebacks() -> None:
    running = _page("running", FakeApi())
    assert not running.exception and len(running.dataframe) == 2
    history = _page("history", FakeApi())
    assert not history.exception
    shown = history.dataframe[0].value
    assert list(shown["status"]) == ["finished", "failed"] and list(shown["result"]) == ["$15,190", ""]
    assert ("receipt", "j1") in history.session_state["client"].sent  # the picked job's, to download
    assert [d.proto.label for d in history.get("download_button")] == ["Download the receipt (JSON)"]
    history.multiselect[1].set_value(["failed"]).run()
    assert list(history.dataframe[0].value["status"]) == ["failed"]
    fake = FakeApi()
    ledger = _page("ledger", fake)
    assert not ledger.exception and "Consistent" in ledger.success[0].value
    # the balance as of the picked time (to the end of the last entry's minute, in UTC, so an
    # entry in its last second counts), replayed by the API
    assert ledger.metric[0].value == "40 credits"
    assert ("as_of", "2026-12-01T10:00:59.999999+00:00") in fake.sent
    side = _page("sidebar", FakeApi())
    assert any("25 on hold" in c.value and "5 of the balance promotional" in c.value
               for c in side.caption)
    models = _page("models", FakeApi())
    assert not models.exception and models.caption[-1].value.startswith("5-fold CV")
    live = models.dataframe[1].value  # the live figures, beside the card's CV ones
    assert list(live["model"]) == ["linear_regression"] and list(live["reports"]) == [40]
    assert list(live["live MAE 95 %"]) == ["1,300 to 2,000"] and list(live["CV MAE"]) == [1500]
    assert list(live["coverage 95 %"]) == ["0.60 to 0.86"]
    shadow = models.dataframe[2].value  # a challenger beside its champion, on the same cars
    assert list(shadow["challenger"]) == ["v2"] and list(shadow["against"]) == ["v1"]
    assert list(shadow["trained on"]) == ["dealer.csv"] and list(shadow["shadow jobs"]) == [30]
    assert list(shadow["challenger MAE"]) == [1800.0] and list(shadow["champion MAE"]) == [1500.0]
    assert any("10% of the paid jobs" in c.value for c in models.caption)
    drifted = models.dataframe[3].value
    assert list(drifted["most drifted"]) == ["horsepower", "horsepower"]
    assert [w.value.split(":")[0] for w in models.warning] == ["linear_regression"]
    # the spend per model, as the API bills it, drawn beside the balance
    assert [h.value for h in ledger.subheader] == ["Balance over time", "Spend per model", "Entries"]
    assert len(ledger.get("vega_lite_chart")) == 2


@pytest.mark.parametrize("page", ["predict", "history", "ledger", "models", "running"])
def test_api_failures_show_the_detail_not_a_traceback(page: str) -> None:
    at = _page(page, FakeApi(fail_with=ApiError(503, "the carprice API is not reachable")))
    assert not at.exception
    assert [e.value for e in at.error] == ["the carprice API is not reachable"]


def test_an_expired_session_signs_out_cleanly() -> None:
    at = _page("sidebar", FakeApi(fail_with=ApiError(401, "token expired; sign in again")))
    assert not at.exception
    assert "user" not in at.session_state
    assert "expired" in at.session_state["notice"]


def test_the_fleet_table_leaves_empty_cells_empty_and_keeps_prices_as_numbers() -> None:
    from ui.views.fleet import results_table

    csv = (b"row,brand,model,price,low,high,status,error\n"
           b"0,audi,100 ls,17859.17,15000.5,20000,finished,\n"
           b"1,bmw,x3,,,,failed,model error: None of it\n")
    table = results_table(csv)
    assert table["error"].tolist() == ["", "model error: None of it"]
    assert table["price"].iloc[0] == 17859.17 and pd.isna(table["price"].iloc[1])
    assert "None" not in table.astype(str)["error"].iloc[0]


def test_the_models_charts_name_the_models_in_one_order_with_a_legend() -> None:
    from ui import charts
    from ui.views.models import models_table

    cards = [FakeApi().card(n) for n in ("random_forest", "linear_regression", "gradient_boosting")]
    table = models_table(cards)
    order = table["model"].tolist()
    assert order == ["linear_regression", "gradient_boosting", "random_forest"]  # cheapest first
    for chart in (charts.r2_chart(table, order), charts.errors_chart(table, order)):
        spec = chart.to_dict()
        layers = spec.get("layer", [spec])
        y = layers[0]["encoding"]["y"]
        assert (y["field"], y["sort"]) == ("model", order)  # named on the axis, same order
        assert "legend" not in layers[0]["encoding"]["color"]  # a legend says what colours mean


def test_deleting_the_account_needs_the_password_and_a_tick_then_signs_out() -> None:
    fake = FakeApi()
    side = _page("sidebar", fake)
    field = next(t for t in side.text_input if t.label == "Your password, to confirm")
    field.set_value("wrong-password")
    next(c for c in side.checkbox if c.label.startswith("I understand")).check()
    side = next(b for b in side.button if b.label == "Delete my account").click().run()
    assert [e.value for e in side.error] == ["password: it does not match this account; nothing was erased"]
    assert "user" in side.session_state
    next(t for t in side.text_input if t.label == "Your password, to confirm").set_value("password-123")
    next(c for c in side.checkbox if c.label.startswith("I understand")).check()
    side = next(b for b in side.button if b.label == "Delete my account").click().run()
    assert ("erase_me", "password-123") in fake.sent
    assert "user" not in side.session_state


def test_the_sidebar_warns_while_the_read_side_is_stalled() -> None:
    fake = FakeApi()
    calm = _page("sidebar", fake)
    assert not calm.exception and not calm.sidebar.warning
    fake.stalled_projections = {"balances": 14.0}
    stuck = _page("sidebar", fake)
    assert "may be out of date" in stuck.sidebar.warning[0].value
    assert "balances" in stuck.sidebar.warning[0].value


def test_the_api_keys_page_shows_a_new_secret_once_and_revokes() -> None:
    fake = FakeApi()
    at = _page("keys", fake)
    assert not at.exception and at.info[0].value == "No keys yet."
    at.text_input[0].set_value("dealer DMS")
    at.button[0].click().run()  # the form's submit
    assert at.code[0].value.startswith("cpk_") and "will not be shown again" in at.success[0].value
    assert any("dealer DMS" in m.value and "· live" in m.value for m in at.markdown)
    at.button(key="revoke-k0").click().run()
    assert fake.keys()[0]["revoked_at"] and not at.exception
    assert any("revoked 2026-12-07 10:05 UTC" in m.value for m in at.markdown)
