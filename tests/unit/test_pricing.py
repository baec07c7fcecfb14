"""Price ranges (conformal CV+) and explanations, on the real dataset and pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from mapie.regression import CrossConformalRegressor
from sklearn.model_selection import KFold, RepeatedKFold

from model_registry.features import FEATURES, load_dataset
from model_registry.pipeline import MODELS
from model_registry.pricing import INNER_FOLDS, PriceModel
from model_registry.store import Registry
from model_registry.training import train_model


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_dataset()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, data):  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path_factory.mktemp("reg"))
    for name in ("linear_regression", "gradient_boosting", "random_forest"):
        train_model(name, x, y, reg, n_splits=3 if name == "linear_regression" else 2,
                    n_repeats=1, seed=7)
    return reg


def test_coverage_on_the_card_is_what_an_independent_cv_measures(registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    card = registry.card("linear_regression")
    covered, widths = [], []
    # the same folds, with MAPIE called directly: fit the range on each training part only
    for train, test in RepeatedKFold(n_splits=3, n_repeats=1, random_state=7).split(x):
        mapie = CrossConformalRegressor(MODELS["linear_regression"](7), confidence_level=0.8,
                                        conformity_score="gamma", method="plus",
                                        cv=KFold(INNER_FOLDS, shuffle=True, random_state=7))
        mapie.fit_conformalize(x.iloc[train], y.iloc[train])
        point = MODELS["linear_regression"](7).fit(x.iloc[train], y.iloc[train]).predict(x.iloc[test])
        _, bounds = mapie.predict_interval(x.iloc[test])
        low, high = np.minimum(bounds[:, 0, 0], point), np.maximum(bounds[:, 1, 0], point)
        actual = y.iloc[test].to_numpy()
        covered.append(np.mean((actual >= low) & (actual <= high)))
        widths.append(np.mean(high - low))
    assert card.metrics["coverage"]["mean"] == pytest.approx(np.mean(covered), abs=1e-9)
    assert card.metrics["width"]["mean"] == pytest.approx(np.mean(widths), abs=1e-6)
    assert 0.7 < card.metrics["coverage"]["mean"] < 0.9  # near the 80 % asked for
    assert card.interval["level"] == 0.8 and len(card.oof_range) == 205
    assert all(lo <= p <= hi for (_, p), (lo, hi) in zip(card.oof, card.oof_range, strict=True))


@pytest.mark.parametrize("name", ["linear_regression", "gradient_boosting"])
def test_every_price_comes_with_a_range_that_holds_it(registry: Registry, data, name: str) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    model = registry.load(name, "1")
    assert isinstance(model, PriceModel)
    priced = model.price(x.iloc[:20])
    assert [p.price for p in priced] == pytest.approx(list(model.predict(x.iloc[:20])))
    assert all(p.low < p.price < p.high for p in priced)


@pytest.mark.parametrize("name", ["linear_regression", "gradient_boosting"])
def test_the_effects_add_up_to_the_price_to_the_cent(registry: Registry, data, name: str) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    model = registry.load(name, "1")
    cars = x.iloc[[0, 50, 120, 200]]
    prices = model.predict(cars)
    for explanation, price, (_, car) in zip(model.explain(cars), prices, cars.iterrows(), strict=True):
        effects = [c["effect"] for c in explanation["contributions"]]
        assert round(explanation["base"] + sum(effects), 2) == round(float(price), 2)
        assert {c["feature"] for c in explanation["contributions"]} <= set(FEATURES)
        assert all(c["value"] == car[c["feature"]] for c in explanation["contributions"])
        assert effects == sorted(effects, key=lambda e: -abs(e))


def test_a_bigger_engine_is_explained_as_raising_the_price(registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    model = registry.load("linear_regression", "1")
    big = x[x["enginesize"] == x["enginesize"].max()].iloc[[0]]
    effects = {c["feature"]: c["effect"] for c in model.explain(big)[0]["contributions"]}
    assert effects["enginesize"] > 0
    small = x[x["enginesize"] == x["enginesize"].min()].iloc[[0]]
    effects = {c["feature"]: c["effect"] for c in model.explain(small)[0]["contributions"]}
    assert effects["enginesize"] < 0


def test_cards_publish_the_explanation_surcharge(registry: Registry) -> None:
    assert registry.card("gradient_boosting").explain_price > 0


@pytest.mark.parametrize("name", ["linear_regression", "gradient_boosting", "random_forest"])
def test_the_compiled_serving_form_answers_exactly_as_the_pipelines(registry: Registry, data,  # type: ignore[no-untyped-def]
                                                                    name: str) -> None:
    import joblib

    x, _ = data
    served = registry.load(name, "1")  # compiled on load
    stored = joblib.load(registry.root / name / "v1" / "model.joblib")  # scikit-learn as trained
    odd = x.iloc[:5].copy()
    odd["brand"], odd["carbody"], odd["fuelsystem"] = "tesla", "pickup", "electric"  # unseen
    for cars in (x, odd, x.iloc[[7]]):
        want, got = stored.price(cars), served.price(cars)
        for w, g in zip(want, got, strict=True):
            assert g.price == pytest.approx(w.price, rel=1e-12)
            assert (g.low, g.high) == (pytest.approx(w.low, rel=1e-12), pytest.approx(w.high, rel=1e-12))
        assert list(served.predict(cars)) == pytest.approx(list(stored.pipeline.predict(cars)), rel=1e-12)
