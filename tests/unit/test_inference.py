"""The inference handler on the in-memory store and real trained models: every result has
its range; a bought explanation is delivered, or only its surcharge is refunded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from commands.application import CarpriceApp
from consumers.inference import InferenceHandler
from domain.events import JOB_REQUESTED
from model_registry.catalog import RegistryCatalog
from model_registry.features import load_dataset
from model_registry.store import Registry
from model_registry.training import train_model


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    x, y = load_dataset()
    reg = Registry(tmp_path_factory.mktemp("reg"))
    train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    return reg


@pytest.fixture
def car() -> dict[str, Any]:
    x, _ = load_dataset()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[10].items()}


class _CannotExplain:
    """A loaded model whose explanations break (a bug, an unsupported tree)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.level = model.level

    def price(self, frame: Any) -> Any:
        return self.model.price(frame)

    def predict(self, frame: Any) -> Any:
        return self.model.predict(frame)

    def explain(self, frame: Any) -> Any:
        raise RuntimeError("TreeExplainer does not support this model")


def _run(app: CarpriceApp, handler: InferenceHandler) -> None:
    handler([e for e in app.published_after(0, 10_000) if e.type == JOB_REQUESTED])


def test_results_carry_their_range_and_the_explanation_bought(registry: Registry,
                                                              car: dict[str, Any]) -> None:
    app = CarpriceApp(RegistryCatalog(registry))
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    app.deposit(user, 100)
    price = app.catalog.offer("linear_regression").price
    surcharge = app.catalog.offer("linear_regression").explain_price
    plain = app.request_prediction(user, "linear_regression", car)
    explained = app.request_prediction(user, "linear_regression", car, explain=True)
    assert explained.price == price + surcharge
    _run(app, InferenceHandler(app, registry))
    a, b = app.job(plain.job_id), app.job(explained.job_id)
    assert a.result == b.result and a.explanation is None
    assert a.interval is not None and a.interval["low"] < a.result < a.interval["high"]
    assert a.interval["level"] == 0.8
    assert b.explanation is not None
    total = b.explanation["base"] + sum(c["effect"] for c in b.explanation["contributions"])
    assert round(total, 2) == b.result
    assert app.balance(user).balance == 100 - 2 * price - surcharge


def test_a_failed_explanation_refunds_only_its_surcharge(registry: Registry, car: dict[str, Any],
                                                         tmp_path: Path) -> None:
    class Broken(Registry):
        def load(self, name: str, version: str) -> Any:
            return _CannotExplain(super().load(name, version))

    broken = Broken(registry.root)
    app = CarpriceApp(RegistryCatalog(broken))
    user = app.sign_up("Ann", "ann@example.com", "password-123").user_id
    app.deposit(user, 100)
    offer = app.catalog.offer("linear_regression")
    job = app.request_prediction(user, "linear_regression", car, explain=True).job_id
    handler = InferenceHandler(app, broken)
    _run(app, handler)
    done = app.job(job)
    assert done.status == "finished" and done.result and done.explanation is None
    assert "TreeExplainer" in (done.explain_error or "")
    assert app.balance(user).balance == 100 - offer.price  # the surcharge came back, once
    _run(app, handler)  # redelivered: nothing more is refunded
    assert app.balance(user).balance == 100 - offer.price


def test_warming_loads_every_model_before_the_first_job_and_a_broken_one_does_not_stop_it(
        tmp_path: Path, registry: Registry) -> None:
    import shutil

    warmed = Registry(registry.root)
    assert InferenceHandler(CarpriceApp(RegistryCatalog(warmed)), warmed).warm() == 1
    assert ("linear_regression", "1") in warmed._cache  # the first job finds it loaded
    shutil.copytree(registry.root, tmp_path / "reg")
    (tmp_path / "reg" / "linear_regression" / "v1" / "model.joblib").write_bytes(b"tampered")
    broken = Registry(tmp_path / "reg")
    assert InferenceHandler(CarpriceApp(RegistryCatalog(broken)), broken).warm() == 0  # logged
    assert not broken._cache
