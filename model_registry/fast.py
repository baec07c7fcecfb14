"""A fitted pipeline compiled for serving: the same arithmetic without scikit-learn's
per-call overhead.

On one car, `Pipeline.predict` spends ~6 ms in input checks of the ColumnTransformer and
its encoders before the model runs; a price range (CV+) predicts with 10 fold pipelines
more. `compile_pipeline` reads the fitted parameters (scaler means and scales, one-hot
categories, target encodings) once and applies them with numpy; the fitted regressor
itself is called as it is. `tests/unit/test_pricing.py` checks that the answers equal the
pipeline's on every car of the dataset and on unseen categories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder


class FeatureCache:
    """The derived features of the frame just seen: stateless, so the fold pipelines of a
    range, all asked about the same frame in turn, compute them once."""

    def __init__(self) -> None:
        self._last: tuple[pd.DataFrame, Callable[..., Any], pd.DataFrame] | None = None

    def get(self, x: pd.DataFrame, features: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
        last = self._last
        if last is not None and last[0] is x and last[1] is features:
            return last[2]
        f = features(x)
        self._last = (x, features, f)
        return f


class CompiledPipeline:
    """predict(frame) like the pipeline it was compiled from (log target included)."""

    def __init__(self, features: Callable[[pd.DataFrame], pd.DataFrame],
                 steps: list[Callable[[pd.DataFrame], np.ndarray]], regressor: Any,
                 inverse: Callable[[np.ndarray], np.ndarray], shared: FeatureCache) -> None:
        self.features, self.steps = features, steps
        self.regressor, self.inverse = regressor, inverse
        self.shared = shared

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        """What the pipeline's preprocessing gives the regressor."""
        f = self.shared.get(x, self.features)
        return np.hstack([step(f) for step in self.steps])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.inverse(self.regressor.predict(self.transform(x)))


def _scaler(t: StandardScaler, cols: list[str]) -> Callable[[pd.DataFrame], np.ndarray]:
    mean = t.mean_ if t.with_mean else np.zeros(len(cols))
    scale = t.scale_ if t.with_std else np.ones(len(cols))

    def apply(f: pd.DataFrame) -> np.ndarray:
        return (np.column_stack([np.asarray(f[c], dtype=float) for c in cols]) - mean) / scale
    return apply


def _one_hot(t: OneHotEncoder, cols: list[str]) -> Callable[[pd.DataFrame], np.ndarray]:
    if t.drop_idx_ is not None or t.handle_unknown != "ignore":
        raise TypeError("only one-hot encoders without drop and with handle_unknown='ignore'")
    offsets = np.cumsum([0] + [len(c) for c in t.categories_])
    lookups = [{v: i for i, v in enumerate(c)} for c in t.categories_]

    def apply(f: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(f), int(offsets[-1])))
        for j, (col, lookup) in enumerate(zip(cols, lookups, strict=True)):
            for row, value in enumerate(f[col]):
                k = lookup.get(value)
                if k is not None:  # unknown: all zeros, as handle_unknown="ignore" does
                    out[row, offsets[j] + k] = 1.0
        return out
    return apply


def _target(t: TargetEncoder, cols: list[str]) -> Callable[[pd.DataFrame], np.ndarray]:
    lookups = [dict(zip(c, e, strict=True)) for c, e in zip(t.categories_, t.encodings_, strict=True)]
    default = float(t.target_mean_)

    def apply(f: pd.DataFrame) -> np.ndarray:
        return np.column_stack([[lookup.get(v, default) for v in f[col]]
                                for col, lookup in zip(cols, lookups, strict=True)])
    return apply


class _Forest:
    """A fitted random forest's mean prediction, calling each tree's compiled predict
    directly (sklearn checks the input and dispatches through joblib once per tree)."""

    def __init__(self, forest: Any) -> None:
        self.trees = [t.tree_ for t in forest.estimators_]

    def predict(self, x: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(x, dtype=np.float32)  # what sklearn's trees compare on
        total = np.zeros(len(x32))
        for tree in self.trees:
            total += tree.predict(x32)[:, 0, 0] if tree.n_outputs > 1 else tree.predict(x32).ravel()
        return total / len(self.trees)


def _regressor(fitted: Any) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    if type(fitted) is RandomForestRegressor and fitted.n_outputs_ == 1:
        return _Forest(fitted)
    return fitted


def compile_pipeline(pipeline: Pipeline, shared: FeatureCache | None = None) -> CompiledPipeline:
    """The serving form of one of model_registry.pipeline's fitted pipelines (`shared`: the
    feature cache of pipelines that are asked about the same frames in turn)."""
    features = pipeline.named_steps["features"].func
    steps: list[Callable[[pd.DataFrame], np.ndarray]] = []
    for _, t, cols in pipeline.named_steps["preprocess"].transformers_:
        if isinstance(t, str):  # the remainder, dropped
            continue
        if isinstance(t, StandardScaler):
            steps.append(_scaler(t, list(cols)))
        elif isinstance(t, OneHotEncoder):
            steps.append(_one_hot(t, list(cols)))
        elif isinstance(t, TargetEncoder):
            steps.append(_target(t, list(cols)))
        else:
            raise TypeError(f"cannot compile a {type(t).__name__}")
    model = pipeline.named_steps["model"]
    return CompiledPipeline(features, steps, _regressor(model.regressor_), model.inverse_func,
                            shared or FeatureCache())
