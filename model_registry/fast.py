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

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

Columns = Mapping[str, Any]  # derived feature -> its values, one per car


class FeatureCache:
    """The derived features of the frame just seen, and their columns as numpy arrays:
    stateless, so the fold pipelines of a range, all asked about the same frame in turn,
    compute them once."""

    def __init__(self) -> None:
        self._last: tuple[pd.DataFrame, Callable[..., Any], Columns] | None = None
        self._numbers: dict[tuple[str, ...], np.ndarray] = {}

    def get(self, x: pd.DataFrame, features: Callable[[pd.DataFrame], Columns]) -> Columns:
        last = self._last
        if last is not None and last[0] is x and last[1] is features:
            return last[2]
        f = features(x)
        self._last = (x, features, f)
        self._numbers = {}
        return f

    def numbers(self, f: Columns, cols: tuple[str, ...]) -> np.ndarray:
        """The columns `cols` of `f` (the features get() just gave) as one float matrix."""
        current = self._last is not None and self._last[2] is f
        got = self._numbers.get(cols) if current else None
        if got is None:
            got = np.column_stack([np.asarray(f[c], dtype=float) for c in cols])
            if current:
                self._numbers[cols] = got
        return got


def _columns_of(features: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], Columns]:
    """The pipeline's feature step as columns: this project's own steps give them without
    building a frame; any other step's frame is read column by column."""
    from model_registry import pipeline

    known: dict[Any, Callable[[pd.DataFrame], Columns]] = {
        pipeline.add_derived_features: pipeline.derived_columns,
        pipeline.add_engine_features: pipeline.engine_columns}
    if features in known:
        return known[features]

    def columns(x: pd.DataFrame) -> Columns:
        f = features(x)
        return {c: f[c].tolist() if f[c].dtype == object else f[c].to_numpy() for c in f.columns}
    return columns


# one ColumnTransformer part: (derived features, the cache of their columns) -> its columns
Step = Callable[[Columns, FeatureCache], np.ndarray]


class CompiledPipeline:
    """predict(frame) like the pipeline it was compiled from (log target included)."""

    def __init__(self, features: Callable[[pd.DataFrame], Columns],
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

    def apply(f: Columns, shared: FeatureCache) -> np.ndarray:
        return (shared.numbers(f, key) - mean) / scale
    return apply


def _one_hot(t: OneHotEncoder, cols: list[str]) -> Step:
    if t.drop_idx_ is not None or t.handle_unknown != "ignore":
        raise TypeError("only one-hot encoders without drop and with handle_unknown='ignore'")
    offsets = np.cumsum([0] + [len(c) for c in t.categories_])
    lookups = [{v: i for i, v in enumerate(c)} for c in t.categories_]

    def apply(f: Columns, shared: FeatureCache) -> np.ndarray:
        out = np.zeros((len(f[cols[0]]), int(offsets[-1])))
        for j, (col, lookup) in enumerate(zip(cols, lookups, strict=True)):
            for row, value in enumerate(f[col]):
                k = lookup.get(value)
                if k is not None:  # unknown: all zeros, as handle_unknown="ignore" does
                    out[row, offsets[j] + k] = 1.0
        return out
    return apply


def _target(t: TargetEncoder, cols: list[str]) -> Step:
    lookups = [dict(zip(c, e, strict=True)) for c, e in zip(t.categories_, t.encodings_, strict=True)]
    default = float(t.target_mean_)

    def apply(f: Columns, shared: FeatureCache) -> np.ndarray:
        return np.column_stack([[lookup.get(v, default) for v in f[col]]
                                for col, lookup in zip(cols, lookups, strict=True)])
    return apply


class _Trees:
    """A sum of fitted regression trees, `start + Σ scale × tree(x)`, walked by one compiled
    loop over all of them (numba), where scikit-learn checks the input once per call and,
    for a forest, dispatches once per tree:

    - a random forest is the mean of its trees: start 0, scale 1/n (sklearn adds the trees
      up and then divides: the same to within rounding, 1e-15 of a log price);
    - gradient boosting is its init's constant plus learning rate × each tree, added in
      stage order, exactly as sklearn's `predict_stages` does it.

    The nodes of every tree are laid end to end in flat arrays (children as absolute
    indices, -1 at a leaf); a car goes left when its value, as float32 like sklearn's trees
    compare it, is <= the node's threshold.
    """

    def __init__(self, trees: list[Any], scale: float, start: float) -> None:
        parts = [t.tree_ for t in trees]
        sizes = [t.node_count for t in parts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.roots = offsets

        def children(side: str) -> np.ndarray:
            return np.concatenate([np.where(getattr(t, side) == -1, -1, getattr(t, side) + off)
                                   for t, off in zip(parts, offsets, strict=True)]).astype(np.int32)
        self.left, self.right = children("children_left"), children("children_right")
        self.feature = np.concatenate([t.feature for t in parts]).astype(np.int32)
        self.threshold = np.concatenate([t.threshold for t in parts]).astype(np.float64)
        self.value = np.concatenate([scale * t.value[:, 0, 0] for t in parts]).astype(np.float64)
        self.start = start
        self.predict(np.zeros((0, 1)))  # compile (or load the compiled walk) now, not on a job

    def predict(self, x: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        out = np.full(len(x32), self.start, dtype=np.float64)
        _walk()(x32, self.roots, self.left, self.right, self.feature, self.threshold,
                self.value, out)
        return out


_WALK: Any = None


def _walk() -> Any:
    """The compiled tree walk (compiled on first use, cached on disk by numba)."""
    global _WALK
    if _WALK is None:
        from numba import njit

        @njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
        def walk(x: Any, roots: Any, left: Any, right: Any, feature: Any, threshold: Any,
                 value: Any, out: Any) -> None:
            for t in range(roots.shape[0]):
                for i in range(x.shape[0]):
                    node = roots[t]
                    while left[node] != -1:
                        if x[i, feature[node]] <= threshold[node]:
                            node = left[node]
                        else:
                            node = right[node]
                    out[i] += value[node]
        _WALK = walk
    return _WALK


class _Linear:
    """A fitted linear model's `X @ coef + intercept`, as sklearn computes it for dense input,
    without its per-call input checks (a tenth of serving's time once the trees were fast)."""

    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self.coef, self.intercept = coef, intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.coef + self.intercept


def _regressor(fitted: Any) -> Any:
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge, RidgeCV

    if type(fitted) in (Ridge, RidgeCV) and np.ndim(fitted.coef_) == 1:
        return _Linear(np.asarray(fitted.coef_, dtype=float), float(fitted.intercept_))

    if type(fitted) is RandomForestRegressor and fitted.n_outputs_ == 1:
        return _Trees(list(fitted.estimators_), 1.0 / len(fitted.estimators_), 0.0)
    if (type(fitted) is GradientBoostingRegressor and type(fitted.init_) is DummyRegressor
            and fitted.estimators_.shape[1] == 1):
        # a DummyRegressor's prediction is one constant, whatever the car
        start = float(fitted._raw_predict_init(np.zeros((1, fitted.n_features_in_)))[0, 0])
        return _Trees(list(fitted.estimators_[:, 0]), float(fitted.learning_rate), start)
    return fitted


def compile_pipeline(pipeline: Pipeline, shared: FeatureCache | None = None) -> CompiledPipeline:
    """The serving form of one of model_registry.pipeline's fitted pipelines (`shared`: the
    feature cache of pipelines that are asked about the same frames in turn)."""
    features = _columns_of(pipeline.named_steps["features"].func)
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
