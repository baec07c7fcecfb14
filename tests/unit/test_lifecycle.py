"""A model's lifecycle on the in-memory store and real trained models: a new version enters as
a challenger, prices a share of the paid jobs in the shadow (unbilled, never holding a paid job
up), serves once promoted; a rollback returns to the champion before; jobs keep their version."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import CarpriceApp
from consumers.inference import InferenceHandler
from consumers.shadow import Shadow, chosen
from domain.events import JOB_REQUESTED
from domain.release import ReleaseRefused, worse_beyond_noise
from infra.shadow_prices import ShadowPrice
from model_registry.catalog import RegistryCatalog
from model_registry.features import load_dataset
from model_registry.store import Registry
from model_registry.training import train_model

MODEL = "linear_regression"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = load_dataset()
    root = tmp_path_factory.mktemp("reg")
    reg = Registry(root)
    train_model(MODEL, x, y, reg, n_splits=2, n_repeats=1)
    train_model(MODEL, x.iloc[::2], y.iloc[::2] * 1.1, reg, n_splits=2, n_repeats=1)  # another view
    return root


class Kept:
    """A shadow store in memory (unit tests: the real one is the shadow_prices table)."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.rows: list[ShadowPrice] = []
        self.hold = hold

    def save(self, rows: list[ShadowPrice]) -> None:
        if self.hold is not None:
            self.hold.wait(30)
        self.rows += rows


def _paying(registry: Registry, name: str, credits: int) -> tuple[CarpriceApp, UUID]:
    """A write side on `registry` (in memory) and a user with `credits`."""
    app = CarpriceApp(RegistryCatalog(registry))
    user = app.sign_up(name, f"{name.lower()}@example.com", "password-123").user_id
    app.deposit(user, credits)
    return app, user


def _requests(app: CarpriceApp) -> list[Any]:
    return [e for e in app.published_after(0, 10_000) if e.type == JOB_REQUESTED]


def test_the_share_is_chosen_by_job_id() -> None:
    ids = [uuid4() for _ in range(4000)]
    picked = [i for i in ids if chosen(i, 0.25)]
    assert 850 < len(picked) < 1150  # a quarter, give or take
    assert all(chosen(i, 0.25) for i in picked)  # a redelivered job is chosen again
    assert not any(chosen(i, 0.0) for i in ids) and all(chosen(i, 1.0) for i in ids)


def test_challengers_price_in_the_shadow_unbilled_and_a_promotion_serves_new_jobs_only(
        trained: Path, car: dict[str, Any]) -> None:
    registry = Registry(trained)
    app, user = _paying(registry, "Ann", 500)
    assert registry.challengers(MODEL) == ["2"]
    first = app.request_prediction(user, MODEL, car)
    assert first.model_version == "1"  # the champion serves paid jobs, not the newer version
    kept = Kept()
    shadow = Shadow(registry, kept, share=1.0)
    InferenceHandler(app, registry, shadow)(_requests(app))
    shadow.drain()
    paid = app.job(first.job_id)
    assert paid.status == "finished" and paid.model_version == "1"
    [row] = kept.rows
    assert (row.job_id, row.version, row.champion_version) == (first.job_id, "2", "1")
    assert row.champion_price == paid.result and row.price is not None and row.price != paid.result
    assert row.low is not None and row.low < row.price < row.high  # type: ignore[operator]
    assert app.balance(user).balance == 500 - first.price  # the shadow bills no one

    assert app.promote_model(MODEL, "2", current="1", by="ops@dealer", why="better on dealers")
    registry.refresh()
    second = app.request_prediction(user, MODEL, car)
    assert second.model_version == "2" and registry.challengers(MODEL) == []
    assert app.job(first.job_id).model_version == "1"  # accepted jobs keep their version
    assert app.roll_back_model(MODEL, by="ops@dealer", why="coverage fell") == "1"
    registry.refresh()
    assert app.request_prediction(user, MODEL, car).model_version == "1"
    assert app.job(second.job_id).model_version == "2"
    history = app.release_history(MODEL)
    assert [(r.kind, r.version, r.previous, r.by, r.why) for r in history] == [
        ("promoted", "2", "1", "ops@dealer", "better on dealers"),
        ("rolled back", "1", "2", "ops@dealer", "coverage fell")]
    with pytest.raises(ReleaseRefused, match="no champion before v1"):
        app.roll_back_model(MODEL, by="ops", why="again")
    other = CarpriceApp(RegistryCatalog(registry))  # another store takes the registry over
    other.promote_model(MODEL, "2", current="1", by="ops", why="in the other store")
    app.close()  # which the first one's closing leaves alone
    registry.refresh()
    assert registry.champion(MODEL) == "2"
    other.close()
    registry.refresh()
    assert registry.champion(MODEL) == "1"  # nothing open: the registry's own rule, no error


def test_a_shadow_that_hangs_or_breaks_never_holds_up_or_fails_a_paid_job(
        trained: Path, car: dict[str, Any]) -> None:
    registry = Registry(trained)
    app, user = _paying(registry, "Bo", 10_000)
    hold = threading.Event()
    shadow = Shadow(registry, Kept(hold), share=1.0)  # its store never answers until released
    handler = InferenceHandler(app, registry, shadow)
    jobs = []
    for _ in range(40):  # more batches than the shadow's queue holds
        jobs.append(app.request_prediction(user, MODEL, car).job_id)
        handler(_requests(app)[-1:])
    assert all(app.job(j).status == "finished" for j in jobs)
    assert shadow.dropped > 0  # dropped, not waited for
    hold.set()
    shadow.drain()

    broken = Registry(trained)
    (trained / MODEL / "v2" / "model.joblib").write_bytes(b"tampered")  # the challenger cannot load
    app2, user2 = _paying(broken, "Cy", 100)
    job = app2.request_prediction(user2, MODEL, car).job_id
    kept = Kept()
    shadow2 = Shadow(broken, kept, share=1.0)
    InferenceHandler(app2, broken, shadow2)(_requests(app2))
    shadow2.drain()
    assert app2.job(job).status == "finished"
    assert [(r.price, "integrity check" in (r.error or "")) for r in kept.rows] == [(None, True)]


def test_worse_beyond_noise_is_told_from_noise() -> None:
    champion = {"r2": {"mean": 0.90, "std": 0.02}}
    assert worse_beyond_noise({"r2": {"mean": 0.89, "std": 0.03}}, champion) is None
    assert worse_beyond_noise({"r2": {"mean": 0.95, "std": 0.01}}, champion) is None
    worse = worse_beyond_noise({"r2": {"mean": 0.80, "std": 0.03}}, champion)
    assert worse is not None and "0.800 ± 0.030" in worse and "0.900 ± 0.020" in worse
