"""The model pipeline, its card and the integrity-checked artifact store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score
from sklearn.model_selection import RepeatedKFold

from model_registry.features import FEATURES, load_dataset
from model_registry.pipeline import MODELS
from model_registry.store import Registry, RegistryError
from model_registry.training import train_model


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return load_dataset()


@pytest.fixture(scope="module")
def small_registry(tmp_path_factory: pytest.TempPathFactory, data):  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path_factory.mktemp("reg"))
    train_model("linear_regression", x, y, reg, n_splits=3, n_repeats=2, seed=7)
    return reg


def test_schema_is_built_from_the_training_data(small_registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    schema = small_registry.card("linear_regression").input_schema
    assert list(schema) == FEATURES
    assert schema["horsepower"]["min"] == 48 and schema["horsepower"]["max"] == 288
    assert schema["horsepower"]["dtype"] == "int"
    assert schema["fueltype"]["categories"] == ["diesel", "gas"]
    assert "porsche" in schema["brand"]["categories"]
    assert "porcshce" not in schema["brand"]["categories"]
    assert schema["brand"]["aliases"]["vw"] == "volkswagen"
    assert "giulia" in schema["model"]["by_brand"]["alfa-romero"]
    assert schema["symboling"]["allowed_min"] == -3
    assert schema["carbody"]["default"] == x["carbody"].mode().iloc[0]


def test_unseen_category_still_predicts(small_registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    model = small_registry.load("linear_regression", "1")
    car = x.iloc[[0]].copy()
    car["brand"] = "tesla"
    car["carbody"] = "pickup"
    car["model"] = "roadster"
    price = float(model.predict(car)[0])
    assert np.isfinite(price) and 1000 < price < 100000


def test_brand_typo_predicts_like_the_corrected_brand(small_registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, _ = data
    model = small_registry.load("linear_regression", "1")
    car = x[x["brand"] == "volkswagen"].iloc[[0]].copy()
    typo = car.copy()
    typo["brand"] = "VW"
    assert model.predict(typo)[0] == pytest.approx(model.predict(car)[0])


def test_tampered_artifact_is_refused(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path)
    train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    artifact = tmp_path / "linear_regression" / "v1" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(RegistryError, match="integrity"):
        Registry(tmp_path).load("linear_regression", "1")


def test_an_artifact_that_holds_no_model_is_refused(tmp_path: Path) -> None:
    import sklearn

    from model_registry.card import ModelCard

    reg = Registry(tmp_path)
    card = ModelCard(name="odd", version="1", price=10, created_at="", sha256="", training_rows=1,
                     sklearn_version=sklearn.__version__, metrics={}, cv={}, input_schema={})
    reg.register(card, {"not": "a model"})  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="holds a dict, not a model"):
        Registry(tmp_path).load("odd", "1")


def test_a_model_trained_with_another_scikit_learn_is_refused_with_what_to_do(
        tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]

    x, y = data
    reg = Registry(tmp_path)
    train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    Registry(tmp_path).load("linear_regression", "1")  # trained here: loads
    card_path = tmp_path / "linear_regression" / "v1" / "card.json"
    card = json.loads(card_path.read_text())
    card["sklearn_version"] = "1.5.2"
    card_path.write_text(json.dumps(card))
    with pytest.raises(RegistryError, match=r"scikit-learn 1\.5\.2.*carprice train"):
        Registry(tmp_path).load("linear_regression", "1")


@pytest.mark.parametrize(("module", "distribution"), [
    ("infra.eventsourcing_compat", "eventsourcing"),
    ("model_registry.mapie_compat", "mapie")])
def test_each_seam_refuses_a_library_version_it_was_not_written_for(
        module: str, distribution: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import importlib.metadata

    seam = importlib.import_module(module)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "99.0.0" if name == distribution else real(name))
    with pytest.raises(ImportError, match=rf"{distribution} 99\.0\.0 is installed.*{module.split('.')[-1]}"):
        importlib.reload(seam)
    monkeypatch.setattr(importlib.metadata, "version", real)
    importlib.reload(seam)  # the installed, tested version imports


def test_card_reports_the_cv_that_training_produced(small_registry: Registry, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    card = small_registry.card("linear_regression")
    assert card.cv == {"n_splits": 3, "n_repeats": 2, "seed": 7}
    # Recompute the same folds independently with plain scikit-learn.
    scores = []
    for train, test in RepeatedKFold(n_splits=3, n_repeats=2, random_state=7).split(x):
        est = MODELS["linear_regression"](7).fit(x.iloc[train], y.iloc[train])
        scores.append(r2_score(y.iloc[test], est.predict(x.iloc[test])))
    assert card.metrics["r2"]["mean"] == pytest.approx(np.mean(scores), abs=1e-9)
    assert card.metrics["r2"]["std"] == pytest.approx(np.std(scores), abs=1e-9)
    assert card.training_rows == 205 and len(card.oof) == 205


def test_new_version_keeps_the_old_one_loadable(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path)
    first = train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    second = train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    assert (first.version, second.version) == ("1", "2")
    assert reg.load("linear_regression", "1") is not None
    assert reg.card("linear_regression", "1").sha256 == first.sha256


def test_a_new_version_enters_as_a_challenger_and_serves_once_promoted(
        tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path)
    for _ in range(3):
        train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    price = reg.price("linear_regression")
    # the first version serves; the newer ones price in the shadow and move no price
    assert reg.champion("linear_regression") == "1" and reg.card("linear_regression").version == "1"
    assert reg.challengers("linear_regression") == ["2", "3"]
    assert [c.version for c in reg.champion_cards()] == ["1"]
    promoted: dict[str, str] = {}
    reg.follow(promoted.get)
    promoted["linear_regression"] = "2"
    reg.refresh()  # otherwise trusted for CHAMPION_TTL_SECONDS
    assert reg.card("linear_regression").version == "2" and reg.challengers("linear_regression") == ["3"]
    promoted["linear_regression"] = "9"  # a promotion this registry lacks: its own rule serves
    reg.refresh()
    assert reg.champion("linear_regression") == "1"
    assert reg.price("linear_regression") == price


def test_cards_from_before_the_lifecycle_keep_the_latest_serving(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    x, y = data
    reg = Registry(tmp_path)
    for _ in range(2):
        train_model("linear_regression", x, y, reg, n_splits=2, n_repeats=1)
    card_file = tmp_path / "linear_regression" / "v2" / "card.json"
    card = json.loads(card_file.read_text())
    del card["challenger"]  # as a card written before the lifecycle existed
    card_file.write_text(json.dumps(card))
    assert Registry(tmp_path).champion("linear_regression") == "2"


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        Registry(tmp_path).card("nope")


def test_prices_follow_the_cross_validated_rank() -> None:
    from model_registry.prices import PriceOrderError, by_rank, check_order

    assert by_rank({"a": 0.89, "b": 0.925, "c": 0.921}, []) == {"a": 10, "c": 25, "b": 40}
    assert by_rank({"only": 0.5}, []) == {"only": 10}
    four = by_rank({"w": 0.1, "x": 0.2, "y": 0.3, "z": 0.4}, [])
    assert sorted(four.values()) == list(four.values()) == [10, 25, 40, 55]
    # an operator's price points are kept, and handed out again by quality
    assert by_rank({"a": 0.9, "b": 0.8}, [30, 12]) == {"b": 12, "a": 30}
    check_order({"a": 30, "b": 12}, {"a": 0.9, "b": 0.8})
    with pytest.raises(PriceOrderError, match="a .* must cost more than b"):
        check_order({"a": 12, "b": 30}, {"a": 0.9, "b": 0.8})


def test_train_measures_with_the_cv_the_settings_name_five_by_five_unless_told(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from cli.models import train_models
    from infra.settings import Settings

    assert Settings(CARPRICE_HOME=str(tmp_path)).cv == (5, 5)  # type: ignore[call-arg]
    for bad in ("1x5", "5x0", "5", "five"):
        with pytest.raises(ValidationError, match="CARPRICE_TRAIN_CV"):
            Settings(CARPRICE_HOME=str(tmp_path), CARPRICE_TRAIN_CV=bad)  # type: ignore[call-arg]
    quick = Settings(CARPRICE_HOME=str(tmp_path), MODEL_REGISTRY_DIR=str(tmp_path / "reg"),  # type: ignore[call-arg]
                     CARPRICE_TRAIN_CV="2x1")
    train_models(quick, ["linear_regression"])
    card = Registry(tmp_path / "reg").card("linear_regression", "1")
    assert (card.cv["n_splits"], card.cv["n_repeats"]) == (2, 1)
    assert len(card.oof) == 205 and card.metrics["r2"]["mean"] > 0.8
