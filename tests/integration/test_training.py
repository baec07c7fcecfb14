"""Full training meets the quality bars, and `carprice models list --json` reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_train_then_models_list_meets_the_cv_bars(tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_REGISTRY_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "infra.cli"]
    trained = subprocess.run([*cli, "train"], env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    assert "random_forest" in trained.stdout
    listed = subprocess.run([*cli, "models", "list", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    assert set(models) == {"linear_regression", "gradient_boosting", "random_forest"}
    assert {m["cv"]["n_splits"] for m in models.values()} == {5}
    assert {m["cv"]["n_repeats"] for m in models.values()} == {5}
    assert max(m["metrics"]["r2"]["mean"] for m in models.values()) >= 0.92
    assert models["linear_regression"]["metrics"]["r2"]["mean"] >= 0.85
    # the better model costs more: prices rise with the cross-validated R²
    by_quality = sorted(models.values(), key=lambda m: m["metrics"]["r2"]["mean"])
    prices = [m["price"] for m in by_quality]
    assert prices == sorted(prices) and len(set(prices)) == 3
    # the train CLI skips when models exist, as `make up` relies on
    again = subprocess.run([*cli, "train", "--if-missing"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert "already registered" in again.stdout
