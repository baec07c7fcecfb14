"""The scikit-learn pipelines, one per model name; everything learnt is inside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler, TargetEncoder

from model_registry.features import CATEGORICAL, NUMERIC, Cars, normalise_brand

DERIVED = ["power_to_weight", "log_curbweight", "log_enginesize", "log_horsepower", "volume"]


def derived_columns(x: pd.DataFrame | Cars) -> dict[str, Any]:
    """Brand normalisation and derived features, column by column (lists of strings for the
    categorical ones, float arrays for the numbers): stateless, so leak-free in a pipeline.

    Serving reads these columns directly (model_registry.fast); training wraps them in a
    frame. Per-column pandas assignment used to cost more than the model itself.
    """
    cols: dict[str, Any] = {
        col: [str(v).strip().lower() for v in x[col]] for col in CATEGORICAL
    }
    cols["brand"] = [normalise_brand(b) for b in cols["brand"]]
    for col in NUMERIC:
        cols[col] = np.asarray(x[col], dtype=float)  # a non-number raises ValueError here
    hp, weight = cols["horsepower"], cols["curbweight"]
    cols["power_to_weight"] = hp / weight
    cols["log_curbweight"] = np.log(np.clip(weight, 1, None))
    cols["log_enginesize"] = np.log(np.clip(cols["enginesize"], 1, None))
    cols["log_horsepower"] = np.log(np.clip(hp, 1, None))
    cols["volume"] = cols["carlength"] * cols["carwidth"] * cols["carheight"] / 1e5
    return cols


def add_derived_features(x: pd.DataFrame) -> pd.DataFrame:
    """derived_columns as a frame (the pipelines' first step)."""
    return pd.DataFrame(derived_columns(x), index=x.index)


CYLINDERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8, "twelve": 12}
ENGINE = ["cylinders", "displacement_per_cylinder", "log_mpg"]


def engine_columns(x: pd.DataFrame | Cars) -> dict[str, Any]:
    """The derived features, plus the engine read as numbers (what a linear model cannot
    learn from one-hot cylinders): cylinders, displacement per cylinder, log mean mpg."""
    cols = derived_columns(x)
    cylinders = np.array([CYLINDERS.get(v, 4) for v in cols["cylindernumber"]], dtype=float)
    cols["cylinders"] = cylinders
    cols["displacement_per_cylinder"] = cols["enginesize"] / cylinders
    cols["log_mpg"] = np.log(np.clip((cols["citympg"] + cols["highwaympg"]) / 2, 1, None))
    return cols


def add_engine_features(x: pd.DataFrame) -> pd.DataFrame:
    """engine_columns as a frame (the linear model's first step)."""
    return pd.DataFrame(engine_columns(x), index=x.index)


def _preprocess(engine: bool, brand_value: bool) -> ColumnTransformer:
    parts: list[tuple[str, Any, list[str]]] = [
        ("num", StandardScaler(), NUMERIC + DERIVED + (ENGINE if engine else [])),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ]
    if brand_value:
        # the brand's mean price, cross-fitted inside fit (so leak-free): one dense column
        # trees can split on, where 22 sparse one-hot columns of 205 cars give them little
        folds = KFold(5, shuffle=True, random_state=0)
        parts.append(("te", TargetEncoder(target_type="continuous", cv=folds), ["brand"]))
    return ColumnTransformer(parts, remainder="drop")  # `model` is free text; see FREE_TEXT


def _log_target(regressor: object) -> TransformedTargetRegressor:
    # Prices are right-skewed; errors are closer to multiplicative than additive.
    return TransformedTargetRegressor(regressor=regressor, func=np.log, inverse_func=np.exp)


def _pipeline(regressor: object, engine: bool = False, brand_value: bool = False) -> Pipeline:
    return Pipeline([
        ("features", FunctionTransformer(add_engine_features if engine else add_derived_features)),
        ("preprocess", _preprocess(engine, brand_value)),
        ("model", _log_target(regressor)),
    ])


# Chosen on the 5x5 repeated CV alone (docs/models.md has the candidates and their scores).
def linear_regression(seed: int) -> Pipeline:
    """Ridge-regularised linear regression on a log price, with the engine read as numbers;
    alpha chosen by inner CV."""
    return _pipeline(RidgeCV(alphas=np.logspace(-2, 2, 21)), engine=True)


def gradient_boosting(seed: int) -> Pipeline:
    """Gradient-boosted trees on a log price, with the brand's cross-fitted mean price."""
    return _pipeline(GradientBoostingRegressor(
        n_estimators=500, learning_rate=0.03, max_depth=4, subsample=0.7, max_features=0.3,
        min_samples_leaf=2, random_state=seed,
    ), brand_value=True)


def random_forest(seed: int) -> Pipeline:
    """A random forest on a log price, with the brand's cross-fitted mean price."""
    return _pipeline(RandomForestRegressor(
        n_estimators=300, max_features=0.33, random_state=seed, n_jobs=2,
    ), brand_value=True)


# name -> builder (seed -> unfitted pipeline).
MODELS: dict[str, Callable[[int], Pipeline]] = {
    "linear_regression": linear_regression,
    "gradient_boosting": gradient_boosting,
    "random_forest": random_forest,
}
