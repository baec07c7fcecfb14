"""A fitted pipeline compiled for serving: the same arithmetic without scikit-learn's
per-call overhead.

On one car, `Pipeline.predict` spends ~6 ms in input checks of the ColumnTransformer and
its encoders before the model runs; a price range (CV+) predicts with 10 fold pipelines
more. `compile_pipeline` reads the fitted parameters (scaler means and scales, one-hot
categories, target encodings) once and applies them with numpy. Tree ensembles (random
forest, gradient boosting) are summed by scikit-learn's own compiled loop over their trees
(`predict_stages`), in one call per ensemble, without the per-tree and per-call input checks;
other regressors are called as they are. `tests/unit/test_pricing.py` checks that the
answers equal the pipeline's on every car of the dataset and on unseen categories.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder


class FeatureCache:
    """The derived features of the frame just seen, and their columns as numpy arrays:
    stateless, so the fold pipelines of a range, all asked about the same frame in turn,
    compute them once."""

    def __init__(self) -> None:
        self._last: tuple[pd.DataFrame, Callable[..., Any], pd.DataFrame] | None = None
        self._numbers: dict[tuple[str, ...], np.ndarray] = {}
        self._values: dict[str, list[Any]] = {}

    def get(self, x: pd.DataFrame, features: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
        last = self._last
        if last is not None and last[0] is x and last[1] is features:
            return last[2]
        f = features(x)
        self._last = (x, features, f)
        self._numbers, self._values = {}, {}
        return f

    def numbers(self, f: pd.DataFrame, cols: tuple[str, ...]) -> np.ndarray:
        """The columns `cols` of `f` (the frame get() just gave) as one float matrix."""
        got = self._numbers.get(cols)
        if got is None or self._last is None or self._last[2] is not f:
            got = np.column_stack([np.asarray(f[c], dtype=float) for c in cols])
            if self._last is not None and self._last[2] is f:
                self._numbers[cols] = got
        return got

    def values(self, f: pd.DataFrame, col: str) -> list[Any]:
        """One column of `f` as a list of Python values."""
        got = self._values.get(col)
        if got is None or self._last is None or self._last[2] is not f:
            got = f[col].tolist()
            if self._last is not None and self._last[2] is f:
                self._values[col] = got
        return got


# one ColumnTransformer part: (derived features, the cache of their columns) -> its columns
Step = Callable[[pd.DataFrame, FeatureCache], np.ndarray]


class CompiledPipeline:
    """predict(frame) like the pipeline it was compiled from (log target included)."""

    def __init__(self, features: Callable[[pd.DataFrame], pd.DataFrame],
                 steps: list[Step], regressor: Any,
                 inverse: Callable[[np.ndarray], np.ndarray], shared: FeatureCache) -> None:
        self.features, self.steps = features, steps
        self.regressor, self.inverse = regressor, inverse
        self.shared = shared

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        """What the pipeline's preprocessing gives the regressor."""
        f = self.shared.get(x, self.features)
        return np.hstack([step(f, self.shared) for step in self.steps])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.inverse(self.regressor.predict(self.transform(x)))


def _scaler(t: StandardScaler, cols: list[str]) -> Step:
    mean = t.mean_ if t.with_mean else np.zeros(len(cols))
    scale = t.scale_ if t.with_std else np.ones(len(cols))
    key = tuple(cols)

    def apply(f: pd.DataFrame, shared: FeatureCache) -> np.ndarray:
        return (shared.numbers(f, key) - mean) / scale
    return apply


def _one_hot(t: OneHotEncoder, cols: list[str]) -> Step:
    if t.drop_idx_ is not None or t.handle_unknown != "ignore":
        raise TypeError("only one-hot encoders without drop and with handle_unknown='ignore'")
    offsets = np.cumsum([0] + [len(c) for c in t.categories_])
    lookups = [{v: i for i, v in enumerate(c)} for c in t.categories_]

    def apply(f: pd.DataFrame, shared: FeatureCache) -> np.ndarray:
        out = np.zeros((len(f), int(offsets[-1])))
        for j, (col, lookup) in enumerate(zip(cols, lookups, strict=True)):
            for row, value in enumerate(shared.values(f, col)):
                k = lookup.get(value)
                if k is not None:  # unknown: all zeros, as handle_unknown="ignore" does
                    out[row, offsets[j] + k] = 1.0
        return out
    return apply


def _target(t: TargetEncoder, cols: list[str]) -> Step:
    lookups = [dict(zip(c, e, strict=True)) for c, e in zip(t.categories_, t.encodings_, strict=True)]
    default = float(t.target_mean_)

    def apply(f: pd.DataFrame, shared: FeatureCache) -> np.ndarray:
        return np.column_stack([[lookup.get(v, default) for v in shared.values(f, col)]
                                for col, lookup in zip(cols, lookups, strict=True)])
    return apply


class _Trees:
    """A sum of fitted regression trees: `start + scale × Σ tree(x)`, summed by scikit-learn's
    compiled loop over the trees (`predict_stages`, what gradient boosting predicts with), in
    one call, where sklearn checks the input once per call and, for a forest, once per tree.

    - a random forest is the mean of its trees: start 0, scale 1/n (sklearn adds the trees up
      and then divides: the same to within rounding, 1e-15 of a log price);
    - gradient boosting is its init's constant plus learning rate × the trees, exactly as
      sklearn's own `_raw_predict` does it.
    """

    def __init__(self, trees: np.ndarray, scale: float, start: float) -> None:
        self.trees = trees  # object array (n_trees, 1) of fitted DecisionTreeRegressors
        self.scale, self.start = scale, start

    def predict(self, x: np.ndarray) -> np.ndarray:
        from sklearn.ensemble._gradient_boosting import predict_stages

        x32 = np.ascontiguousarray(x, dtype=np.float32)  # what sklearn's trees compare on
        out = np.full((len(x32), 1), self.start, dtype=np.float64)
        predict_stages(self.trees, x32, self.scale, out)
        return out[:, 0]


def _regressor(fitted: Any) -> Any:
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    if type(fitted) is RandomForestRegressor and fitted.n_outputs_ == 1:
        trees = np.empty((len(fitted.estimators_), 1), dtype=object)
        trees[:, 0] = fitted.estimators_
        return _Trees(trees, 1.0 / len(fitted.estimators_), 0.0)
    if (type(fitted) is GradientBoostingRegressor and type(fitted.init_) is DummyRegressor
            and fitted.estimators_.shape[1] == 1):
        # a DummyRegressor's prediction is one constant, whatever the car
        start = float(fitted._raw_predict_init(np.zeros((1, fitted.n_features_in_)))[0, 0])
        return _Trees(fitted.estimators_, float(fitted.learning_rate), start)
    return fitted


def compile_pipeline(pipeline: Pipeline, shared: FeatureCache | None = None) -> CompiledPipeline:
    """The serving form of one of model_registry.pipeline's fitted pipelines (`shared`: the
    feature cache of pipelines that are asked about the same frames in turn)."""
    features = pipeline.named_steps["features"].func
    steps: list[Step] = []
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
