"""The scikit-learn pipelines, one per model name; everything learnt is inside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from model_registry.features import CATEGORICAL, NUMERIC, normalise_brand

DERIVED = ["power_to_weight", "log_curbweight", "log_enginesize", "log_horsepower", "volume"]


def add_derived_features(x: pd.DataFrame) -> pd.DataFrame:
    """Brand normalisation and derived features: stateless, so leak-free inside the pipeline.

    Built column-wise into one new frame: serving predicts small batches, where
    per-column pandas assignment used to cost more than the model itself.
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
    return pd.DataFrame(cols, index=x.index)


def _preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC + DERIVED),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ],
        remainder="drop",  # `model` is free text; see features.FREE_TEXT
    )


def _log_target(regressor: object) -> TransformedTargetRegressor:
    # Prices are right-skewed; errors are closer to multiplicative than additive.
    return TransformedTargetRegressor(regressor=regressor, func=np.log, inverse_func=np.exp)


def _pipeline(regressor: object) -> Pipeline:
    return Pipeline([
        ("features", FunctionTransformer(add_derived_features)),
        ("preprocess", _preprocess()),
        ("model", _log_target(regressor)),
    ])


def linear_regression(seed: int) -> Pipeline:
    """Ridge-regularised linear regression on a log price; alpha chosen by inner CV."""
    return _pipeline(RidgeCV(alphas=np.logspace(-2, 2, 21)))


def gradient_boosting(seed: int) -> Pipeline:
    """Gradient-boosted trees on a log price."""
    return _pipeline(GradientBoostingRegressor(
        n_estimators=500, learning_rate=0.03, max_depth=4, subsample=0.7,
        min_samples_leaf=2, random_state=seed,
    ))


def random_forest(seed: int) -> Pipeline:
    """A random forest on a log price."""
    return _pipeline(RandomForestRegressor(
        n_estimators=300, max_features=0.33, random_state=seed, n_jobs=2,
    ))


# name -> builder (seed -> unfitted pipeline).
MODELS: dict[str, Callable[[int], Pipeline]] = {
    "linear_regression": linear_regression,
    "gradient_boosting": gradient_boosting,
    "random_forest": random_forest,
}
