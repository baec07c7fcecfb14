"""Drift: the PSI of a feature, on the real training data, stays near 0 for cars like it and
rises past the threshold for a shifted sample; unseen categories are counted."""

from __future__ import annotations

import random

import pytest

from domain.drift import categorical_reference, drift, numeric_reference, psi, references
from model_registry.features import CATEGORICAL, NUMERIC, load_dataset


@pytest.fixture(scope="module")
def training() -> list[dict[str, object]]:
    x, _ = load_dataset()
    return x.to_dict("records")  # type: ignore[no-any-return]


def test_cars_like_the_training_data_do_not_drift(training: list[dict[str, object]]) -> None:
    rng = random.Random(7)
    sample = [rng.choice(training) for _ in range(1000)]  # drawn from the same population
    for ref in references(training, NUMERIC, CATEGORICAL):
        found = drift(ref, [c[ref.feature] for c in sample])
        assert found is not None and found.psi < 0.1, found
        assert found.unseen_share == 0.0


def test_a_shifted_sample_drifts_past_the_threshold(training: list[dict[str, object]]) -> None:
    ref = numeric_reference("horsepower", [c["horsepower"] for c in training])
    shifted = [float(c["horsepower"]) * 1.5 for c in training]  # 50 % more power, car for car
    assert drift(ref, shifted).psi > 0.25  # type: ignore[union-attr]
    one_car = [training[0]["horsepower"]] * 200  # the same car over and over
    assert drift(ref, one_car).psi > 0.25  # type: ignore[union-attr]


def test_unseen_categories_are_their_own_bin_and_their_share_is_reported(
        training: list[dict[str, object]]) -> None:
    ref = categorical_reference("brand", [c["brand"] for c in training])
    recent = [c["brand"] for c in training[:80]] + ["tesla"] * 20
    found = drift(ref, recent)
    assert found is not None and found.unseen_share == pytest.approx(0.2)
    assert found.psi > 0.25  # a fifth of the cars in a bin the training data had none of


def test_psi_is_zero_for_equal_shares_and_symmetric_in_its_terms() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.9, 0.1], [0.1, 0.9]) == pytest.approx(psi([0.1, 0.9], [0.9, 0.1]))
    assert drift(numeric_reference("x", [1, 2, 3]), []) is None  # nothing to compare


def test_a_handful_of_cars_is_reported_but_never_flagged() -> None:
    from api.drift import DriftReport
    from domain.drift import FeatureDrift

    far = [FeatureDrift("horsepower", 3.0, 0.0)]
    assert DriftReport("m", 1000, 6, 0.25, far, min_cars=100).drifting == []
    assert DriftReport("m", 1000, 100, 0.25, far, min_cars=100).drifting == ["horsepower"]


def test_a_version_trained_on_other_data_is_compared_with_that_data(
        training: list[dict[str, object]], tmp_path: pytest.TempPathFactory) -> None:
    from api.drift import DriftMonitor
    from infra.settings import Settings
    from model_registry.store import Registry
    from model_registry.training import train_model

    x, y = load_dataset()
    bigger = x.copy()
    bigger["horsepower"] = (bigger["horsepower"] * 1.5).round()  # a dealer of stronger cars
    registry = Registry(tmp_path)  # type: ignore[arg-type]
    train_model("linear_regression", bigger, y, registry, n_splits=2, n_repeats=1)
    monitor = DriftMonitor(Settings(), db=None, registry=registry)  # type: ignore[arg-type]
    own = next(r for r in monitor.reference("linear_regression") if r.feature == "horsepower")
    shipped = next(r for r in monitor.reference() if r.feature == "horsepower")
    theirs = list(bigger["horsepower"])
    assert drift(own, theirs).psi < 0.1  # type: ignore[union-attr] - cars like its own data
    assert drift(shipped, theirs).psi > 0.25  # type: ignore[union-attr] - what it said before
