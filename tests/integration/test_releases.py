"""Promotions against a real event store, through the commands an operator types: prices follow
the promoted champions' rank, and training a challenger afterwards keeps it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.integration.test_ops_commands import _carprice, _fresh_database

pytestmark = [pytest.mark.postgres]


def test_training_after_a_promotion_keeps_the_prices_of_the_promoted_rank(
    stack: Stack, registry, unique: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    models = tmp_path / "models"
    shutil.copytree(registry.root, models)
    env = {**os.environ, "DATABASE_URL": _fresh_database(stack, f"rel_{unique}"),
           "MODEL_REGISTRY_DIR": str(models), "CARPRICE_TRAIN_CV": "2x1", "COLUMNS": "200"}
    assert _carprice(env, "migrate").returncode == 0
    # a random_forest version whose card says it cross-validated worse than linear_regression
    shutil.copytree(models / "random_forest" / "v1", models / "random_forest" / "v2")
    card_file = models / "random_forest" / "v2" / "card.json"
    card = json.loads(card_file.read_text())
    card.update(version="2", challenger=True, metrics={**card["metrics"], "r2": {"mean": 0.5, "std": 0.01}})
    card_file.write_text(json.dumps(card))
    prices = json.loads((models / "prices.json").read_text())
    assert prices["random_forest"] > prices["linear_regression"]

    refused = _carprice(env, "models", "promote", "random_forest", "2", "--why", "cheaper to run")
    assert refused.returncode == 1 and "was not promoted" in refused.stdout, refused.stdout
    assert "0.500 ± 0.010" in refused.stdout
    forced = _carprice(env, "models", "promote", "random_forest", "2", "--why", "cheaper to run",
                       "--force")
    assert forced.returncode == 0 and "prices follow the new rank" in forced.stdout, forced.stdout
    promoted = json.loads((models / "prices.json").read_text())
    assert promoted["random_forest"] < promoted["linear_regression"]  # the worse model costs less

    trained = _carprice(env, "train", "--model", "linear_regression")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "linear_regression v2 entered as a challenger" in trained.stdout
    assert json.loads((models / "prices.json").read_text()) == promoted  # the rank it was given
    listed = json.loads(_carprice(env, "models", "list", "--json").stdout)
    assert {m["name"]: (m["version"], m["challengers"]) for m in listed}["random_forest"] == ("2", [])
