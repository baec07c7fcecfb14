"""Prices apart from the models: changed without training, kept by the jobs that paid them,
and never breaking the rule that the better model costs more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import cli
from commands.application import CarpriceApp
from model_registry.card import ModelCard
from model_registry.catalog import RegistryCatalog
from model_registry.store import Registry
from tests.fakes import CAR, SCHEMA


def _registry(root: Path) -> Registry:
    registry = Registry(root)
    for name, r2, price in (("cheap", 0.89, 10), ("pricey", 0.93, 40)):
        card = ModelCard(name=name, version="1", price=price, created_at="", sklearn_version="",
                         sha256="", training_rows=205, metrics={"r2": {"mean": r2, "std": 0.0},
                                                               "rmse": {"mean": 1, "std": 0},
                                                               "mae": {"mean": 1, "std": 0}},
                         cv={}, input_schema=SCHEMA)
        registry.register(card, {"a": "model"})
    registry.prices.put({"cheap": 10, "pricey": 40})
    return registry


def test_a_price_changes_without_training_and_a_job_keeps_what_it_paid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path)
    app = CarpriceApp(RegistryCatalog(registry))
    user = app.sign_up("P", "p@example.com", "password-1").user_id
    app.deposit(user, 100)
    before = app.request_prediction(user, "pricey", CAR).job_id
    monkeypatch.setenv("MODEL_REGISTRY_DIR", str(tmp_path))
    done = CliRunner().invoke(cli, ["models", "price", "pricey", "45"])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "prices.json").read_text()) == {"cheap": 10, "pricey": 45}
    assert registry.card("pricey").version == "1"  # no new version: no training
    after = app.request_prediction(user, "pricey", CAR)
    assert after.price == 45 and app.job(before).price == 40
    assert app.balance(user).balance == 100 - 40 - 45


def test_a_price_that_would_make_the_better_model_cost_no_more_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(tmp_path)
    monkeypatch.setenv("MODEL_REGISTRY_DIR", str(tmp_path))
    refused = CliRunner().invoke(cli, ["models", "price", "cheap", "40"])
    assert refused.exit_code == 1 and "must cost more than" in refused.output
    assert registry.prices.get() == {"cheap": 10, "pricey": 40}
    unknown = CliRunner().invoke(cli, ["models", "price", "magic", "5"])
    assert unknown.exit_code == 1 and "unknown model" in unknown.output
