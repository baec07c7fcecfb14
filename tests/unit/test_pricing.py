"""Price ranges (conformal CV+) and explanations, on the real dataset and pipelines."""

from __future__ import annotations

import numpy as np
import pytest
from mapie.regression import CrossConformalRegressor
from sklearn.model_selection import KFold, RepeatedKFold

from model_registry.features import FEATURES, columns_of, load_dataset
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

    x, _ = data
    served = registry.load(name, "1")  # compiled on load
    stored = registry.load_as_trained(name, "1")  # scikit-learn and MAPIE as trained
    odd = x.iloc[:5].copy()
    odd["brand"], odd["carbody"], odd["fuelsystem"] = "tesla", "pickup", "electric"  # unseen
    for cars in (x, odd, x.iloc[[7]]):
        want, got = stored.price(cars), served.price(cars)
        for w, g in zip(want, got, strict=True):
            assert g.price == pytest.approx(w.price, rel=1e-12)
            assert (g.low, g.high) == (pytest.approx(w.low, rel=1e-12), pytest.approx(w.high, rel=1e-12))
        assert list(served.predict(cars)) == pytest.approx(list(stored.pipeline.predict(cars)), rel=1e-12)
        # inference hands over the cars' columns (no frame): the very same answers
        columns = columns_of(cars.to_dict("records"))
        assert served.price(columns) == got
        assert stored.price(columns) == want  # as trained: given a frame built of the columns


@pytest.mark.parametrize("name", ["linear_regression", "gradient_boosting", "random_forest"])
def test_the_served_range_is_mapies_to_the_last_bit(registry: Registry, data, name: str) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    served = registry.load(name, "1")
    odd = x.iloc[:5].copy()
    odd["brand"], odd["carbody"] = "tesla", "pickup"
    for cars in (x, odd, x.iloc[[3]]):
        # MAPIE itself, over the same compiled fold models: only the range arithmetic differs
        _, bounds = served.ranges.predict_interval(cars)
        want = [(min(lo, p), max(hi, p)) for p, lo, hi in
                zip(served.predict(cars), bounds[:, 0, 0], bounds[:, 1, 0], strict=True)]
        assert [(p.low, p.high) for p in served.price(cars)] == want


def test_a_range_the_direct_form_does_not_know_is_left_to_mapie(data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    pipeline = MODELS["linear_regression"](7)
    absolute = CrossConformalRegressor(pipeline, confidence_level=0.8, conformity_score="absolute",
                                       method="plus", cv=KFold(INNER_FOLDS, shuffle=True, random_state=7))
    model = PriceModel(pipeline.fit(x, y), absolute.fit_conformalize(x, y), 0.8, np.zeros(1))
    want = model.price(x.iloc[:10])
    model.serve()
    assert model._conformal is None  # a symmetric score: not the arithmetic it reproduces
    assert [(p.low, p.high) for p in model.price(x.iloc[:10])] == \
        [(pytest.approx(w.low, rel=1e-12), pytest.approx(w.high, rel=1e-12)) for w in want]


@pytest.mark.parametrize("leaves", [None, 8])  # depth first (walked), best first (left to sklearn)
def test_compiled_trees_split_float32_values_at_thresholds_as_sklearn(leaves: int | None) -> None:
    from sklearn.ensemble import RandomForestRegressor

    from model_registry.fast import _regressor

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 4)) * 1000
    forest = RandomForestRegressor(n_estimators=8, max_leaf_nodes=leaves, random_state=0).fit(
        x, x[:, 0] + rng.normal(size=300))
    thresholds = np.concatenate([t.tree_.threshold[t.tree_.children_left != -1]
                                 for t in forest.estimators_])
    near = thresholds.astype(np.float32)  # the float32 nearest each threshold: often above it
    probes = np.concatenate([near, np.nextafter(near, np.float32(np.inf)),
                             np.nextafter(near, np.float32(-np.inf))])
    cars = np.tile(probes[:, None], (1, 4)).astype(np.float64)
    walked = _regressor(forest)
    assert (type(walked) is not RandomForestRegressor) == (leaves is None)
    assert list(walked.predict(cars)) == pytest.approx(list(forest.predict(cars)), rel=1e-12)


def test_bench_serve_reports_both_forms_of_every_model_and_their_gap(registry: Registry) -> None:
    from bench.serve import bench_serve

    rows = bench_serve(registry, sizes=(2,), seconds=0.1)["rows"]
    assert {r["model"] for r in rows} == {"linear_regression", "gradient_boosting", "random_forest"}
    assert all(r["cars"] == 2 and r["trained_ms"] > 0 and r["served_ms"] > 0 for r in rows)
    assert all(r["max_relative_difference"] < 1e-12 for r in rows)  # the same prices and ranges


def test_a_fold_price_that_is_not_positive_is_refused_as_mapie_refuses_it(registry: Registry) -> None:
    conformal = registry.load("linear_regression", "1")._conformal
    folds = np.full((2, INNER_FOLDS), 9000.0)
    low, high = conformal.bounds(folds)
    assert (low < 9000.0).all() and (high > 9000.0).all()
    for bad in (0.0, -5.0, np.nan):
        folds[1, 3] = bad
        with pytest.raises(ValueError, match="not positive"):
            conformal.bounds(folds)
