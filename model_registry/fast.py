"""A fitted pipeline compiled for serving: the same arithmetic without scikit-learn's
per-call overhead.

On one car, `Pipeline.predict` spends ~6 ms in input checks of the ColumnTransformer and
its encoders before the model runs; a price range (CV+) predicts with 10 fold pipelines
more. `compile_pipeline` reads the fitted parameters (scaler means and scales, one-hot
categories, target encodings) once and applies them with numpy. Tree ensembles (random
forest, gradient boosting) are walked by one compiled loop over compact nodes (numba), a
ridge is one matrix product; other regressors are called as they are. `ConformalPlus` is
MAPIE's CV+ range computed directly from the fold predictions.
`tests/unit/test_pricing.py` checks that the answers equal the pipeline's and MAPIE's on
every car of the dataset and on unseen categories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import RegressorMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder
from sklearn.tree import DecisionTreeRegressor

from model_registry.features import Cars, frame_of

Columns = Mapping[str, Any]  # derived feature -> its values, one per car
Input: TypeAlias = pd.DataFrame | Cars  # a frame, or the columns of the 25 features (features.columns_of)


class FeatureCache:
    """The derived features of the frame just seen, and their columns as numpy arrays:
    stateless, so the fold pipelines of a range, all asked about the same frame in turn,
    compute them once."""

    def __init__(self) -> None:
        # the input is held (not only its id) while cached: its id cannot be reused meanwhile
        self._last: tuple[Input, Callable[..., Any], Columns] | None = None
        self._numbers: dict[tuple[str, ...], np.ndarray] = {}

    def get(self, x: Input, features: Callable[[Input], Columns]) -> Columns:
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


def _columns_of(features: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Input], Columns]:
    """The pipeline's feature step as columns: this project's own steps read a frame's or the
    cars' columns without building a frame; any other step is given a frame, read column by
    column."""
    from model_registry import pipeline

    known: dict[Any, Callable[[Input], Columns]] = {
        pipeline.add_derived_features: pipeline.derived_columns,
        pipeline.add_engine_features: pipeline.engine_columns}
    if features in known:
        return known[features]

    def columns(x: Input) -> Columns:
        f = features(frame_of(x))
        return {c: f[c].tolist() if f[c].dtype == object else f[c].to_numpy() for c in f.columns}
    return columns


# one ColumnTransformer part: (derived features, the cache of their columns) -> its columns
Step = Callable[[Columns, FeatureCache], np.ndarray]
# the compiled tree walk: (x, roots, right, feature, threshold, value, out), adding into out
Walk = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


class Regressor(Protocol):
    """A fitted regressor as serving calls it."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class CompiledPipeline:
    """predict(frame) like the pipeline it was compiled from (log target included)."""

    def __init__(self, features: Callable[[Input], Columns],
                 steps: list[Step], regressor: Regressor,
                 inverse: Callable[[np.ndarray], np.ndarray], shared: FeatureCache) -> None:
        self.features, self.steps = features, steps
        self.regressor, self.inverse = regressor, inverse
        self.shared = shared

    def transform(self, x: Input) -> np.ndarray:
        """What the pipeline's preprocessing gives the regressor."""
        f = self.shared.get(x, self.features)
        return np.hstack([step(f, self.shared) for step in self.steps])

    def predict(self, x: Input) -> np.ndarray:
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

    A range walks 11 ensembles (the point model and 10 folds): ~750 000 nodes for a random
    forest, far more than a core's cache, so each node is kept small (10 bytes). The nodes of
    every tree are laid end to end; scikit-learn builds trees depth first, so a node's left
    child is the next node and only the right one is stored (an absolute index; at a leaf,
    -1 - the leaf's index in `value`). A car goes left when its value, as float32 like
    sklearn's trees take it, is <= the node's threshold; the threshold is kept as the largest
    float32 not above sklearn's float64 one, which for a float32 value is the same test.
    Trees laid out otherwise are refused (TypeError: scikit-learn predicts them).
    """

    def __init__(self, trees: list[DecisionTreeRegressor], scale: float, start: float) -> None:
        parts = [t.tree_ for t in trees]
        for t in parts:
            inner = np.flatnonzero(t.children_left != -1)
            if not np.array_equal(t.children_left[inner], inner + 1):
                raise TypeError("a tree not laid out depth first")
        sizes = [t.node_count for t in parts]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.roots = offsets
        leaf = np.concatenate([t.children_left == -1 for t in parts])
        right = np.concatenate([t.children_right + off for t, off in zip(parts, offsets, strict=True)])
        right[leaf] = -1 - np.arange(int(leaf.sum()))
        self.right = right.astype(np.int32)
        feature = np.concatenate([np.where(t.children_left == -1, 0, t.feature) for t in parts])
        self.feature = feature.astype(np.min_scalar_type(int(feature.max(initial=0))))
        self.threshold = _float32_at_most(np.concatenate([t.threshold for t in parts]))
        self.value = np.concatenate([scale * t.value[:, 0, 0] for t in parts])[leaf].astype(np.float64)
        self.start = start
        self.predict(np.zeros((0, 1)))  # compile (or load the compiled walk) now, not on a job

    def predict(self, x: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        out = np.full(len(x32), self.start, dtype=np.float64)
        _walk()(x32, self.roots, self.right, self.feature, self.threshold, self.value, out)
        return out


def _float32_at_most(threshold: np.ndarray) -> np.ndarray:
    """Each float64 threshold as the largest float32 <= it: for a float32 x, x <= t exactly
    when x <= that float32."""
    near = threshold.astype(np.float32)
    above = near.astype(np.float64) > threshold
    near[above] = np.nextafter(near[above], np.float32(-np.inf))
    return near


_WALK: Walk | None = None


def _walk() -> Walk:
    """The compiled tree walk (compiled on first use, cached on disk by numba)."""
    global _WALK
    if _WALK is None:
        from numba import njit

        @njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
        def walk(x: np.ndarray, roots: np.ndarray, right: np.ndarray, feature: np.ndarray,
                 threshold: np.ndarray, value: np.ndarray, out: np.ndarray) -> None:
            for t in range(roots.shape[0]):
                for i in range(x.shape[0]):
                    node = roots[t]
                    while right[node] >= 0:
                        if x[i, feature[node]] <= threshold[node]:
                            node += 1
                        else:
                            node = right[node]
                    out[i] += value[-1 - right[node]]
        _WALK = walk
    return _WALK


class _Linear:
    """A fitted linear model's `X @ coef + intercept`, as sklearn computes it for dense input,
    without its per-call input checks (a tenth of serving's time once the trees were fast)."""

    def __init__(self, coef: np.ndarray, intercept: float) -> None:
        self.coef, self.intercept = coef, intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.coef + self.intercept


# GradientBoostingRegressor's losses whose link is the identity: the raw prediction it starts
# its trees from is then its init model's prediction
IDENTITY_LINK_LOSSES = ("squared_error", "absolute_error", "huber", "quantile")


def _regressor(fitted: RegressorMixin) -> Regressor:
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import Ridge, RidgeCV

    if type(fitted) in (Ridge, RidgeCV) and np.ndim(fitted.coef_) == 1:
        return _Linear(np.asarray(fitted.coef_, dtype=float), float(fitted.intercept_))

    try:
        if type(fitted) is RandomForestRegressor and fitted.n_outputs_ == 1:
            return _Trees(list(fitted.estimators_), 1.0 / len(fitted.estimators_), 0.0)
        if (type(fitted) is GradientBoostingRegressor and type(fitted.init_) is DummyRegressor
                and fitted.loss in IDENTITY_LINK_LOSSES and fitted.estimators_.shape[1] == 1):
            # a DummyRegressor's prediction is one constant, whatever the car
            # (the regression losses' link is the identity: the raw start is that constant)
            start = float(fitted.init_.predict(np.zeros((1, fitted.n_features_in_)))[0])
            return _Trees(list(fitted.estimators_[:, 0]), float(fitted.learning_rate), start)
    except TypeError:  # trees it cannot walk: scikit-learn's own predict
        pass
    return fitted


class ConformalPlus:
    """The range of MAPIE's `CrossConformalRegressor(method="plus", conformity_score="gamma")`
    at one confidence level, computed as its `predict_interval` computes it, without its
    per-call checks, NaN masks and per-row `nanquantile` (half of a range's time once the
    pipelines were compiled).

    For each car, the prediction of the fold model that did not see training row t, times
    (1 + that row's conformity score), is a sample of the price; the bounds are the
    finite-sample corrected lower and upper quantiles of those samples (method "lower", as
    `mapie.utils._compute_regression_quantile`). The fold predictions are spread over the
    training rows with the same fold weights (`k_`, mean aggregation) and the quantiles are
    the same order statistics: the same numbers. `tests/unit/test_pricing.py` checks them
    against MAPIE on every car of the dataset.
    """

    def __init__(self, weights: np.ndarray, scores: np.ndarray, alpha: float) -> None:
        n = len(scores)
        alpha_np = np.asarray([alpha], dtype=float)
        beta = alpha_np / 2  # not symmetric, no width optimisation: beta = alpha / 2
        low_ref = (1 - 2 * beta) * True + beta  # MAPIE's reverse quantile of the lower bound
        up_ref = 1 - alpha_np + beta
        self.weights_t = weights.T  # (folds, training rows)
        self.scores = scores
        sorted_index: list[int] = []
        for ref in (low_ref, up_ref):
            level = np.ceil(ref * (n + 1)) / n
            if level[0] > 1.0:
                raise ValueError(f"{n} calibration rows are too few for the level {1 - alpha}")
            sorted_index.append(int(np.floor((n - 1) * level).astype(np.intp)[0]))
        # the lower bound is the k-th largest sample, the upper the k-th smallest
        self.low_at, self.high_at = n - 1 - sorted_index[0], sorted_index[1]

    @classmethod
    def of(cls, ranges: object) -> ConformalPlus | None:
        """The direct form of a fitted CrossConformalRegressor, or None if it is not one this
        class computes exactly (then MAPIE is called)."""
        from mapie.conformity_scores import GammaConformityScore

        from model_registry.mapie_compat import fitted

        inside = fitted(ranges)
        if inside is None:
            return None
        regressor, estimator, alphas = inside.regressor, inside.ensemble, inside.alphas
        if (len(alphas) != 1 or regressor.method != "plus" or inside.predict_params
                or type(regressor.conformity_score_function_) is not GammaConformityScore
                or regressor.conformity_score_function_.sym
                or estimator.agg_function != "mean" or estimator.use_split_method_):
            return None
        scores = np.asarray(regressor.conformity_scores_, dtype=float)
        k = np.asarray(estimator.k_, dtype=float)
        if scores.ndim != 1 or np.isnan(scores).any() or k.shape != (len(scores), len(estimator.estimators_)):
            return None
        weights = np.nan_to_num(k, nan=0.0)
        try:
            return cls(weights / weights.sum(axis=1, keepdims=True), scores, float(alphas[0]))
        except ValueError:
            return None

    def bounds(self, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) per car, from each fold model's predictions (cars x folds)."""
        multi = np.matmul(folds, self.weights_t)  # cars x training rows
        if not (multi > 0).all():  # as MAPIE's gamma score refuses them (and NaN has no rank)
            raise ValueError("a fold model predicted a price that is not positive, which the "
                             "gamma range cannot use")
        samples = np.sort(np.multiply(multi, np.add(1, self.scores)), axis=1)
        return samples[:, self.low_at], samples[:, self.high_at]


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
