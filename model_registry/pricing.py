"""What a registered version serves: a price, its calibrated range, and why.

`PriceModel` is the artifact of every version trained since ranges exist. It holds the
pipeline fitted on all rows (the point price, unchanged in meaning) and a MAPIE
CV+ conformal regressor over the same pipeline (the range: `level` of the true prices
fall inside, measured in the repeated CV and recorded on the model card). Older
versions are bare pipelines: they still predict, with no range or explanation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mapie.regression import CrossConformalRegressor
from sklearn.base import RegressorMixin, clone
from sklearn.ensemble import VotingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from model_registry import mapie_compat
from model_registry.features import FEATURES, Cars, frame_of

LEVEL = 0.8  # the share of true prices the range holds
INNER_FOLDS = 10  # CV+ folds (5 over-covered with gradient boosting: 0.84 for 0.80)

# derived feature -> the input features it is made of (its effect is shared among them)
SOURCES = {
    "power_to_weight": ["horsepower", "curbweight"],
    "log_curbweight": ["curbweight"],
    "log_enginesize": ["enginesize"],
    "log_horsepower": ["horsepower"],
    "volume": ["carlength", "carwidth", "carheight"],
    "cylinders": ["cylindernumber"],
    "displacement_per_cylinder": ["enginesize", "cylindernumber"],
    "log_mpg": ["citympg", "highwaympg"],
}


@dataclass(frozen=True)
class Priced:
    """One car's answer: the price and its range."""

    price: float
    low: float
    high: float


def conformal(pipeline: Pipeline, seed: int, level: float = LEVEL) -> CrossConformalRegressor:
    """CV+ (Barber et al. 2021) with a relative ("gamma") score: a range proportional to the
    price, as errors on prices are closer to multiplicative than additive."""
    return CrossConformalRegressor(clone(pipeline), confidence_level=level, conformity_score="gamma",
                                   method="plus", cv=KFold(INNER_FOLDS, shuffle=True, random_state=seed))


class PriceModel:
    """The point price of the model fitted on all rows, a CV+ range, and explanations."""

    def __init__(self, pipeline: Pipeline, ranges: CrossConformalRegressor, level: float,
                 background: np.ndarray) -> None:
        self.pipeline = pipeline
        self.ranges = ranges
        self.level = level
        self.background = background  # mean of the transformed training rows (linear effects)

    @classmethod
    def fit(cls, pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, seed: int,
            level: float = LEVEL) -> PriceModel:
        """Fit the point model on all rows and the CV+ range on the same rows."""
        fitted = clone(pipeline).fit(x, y)
        ranges = conformal(pipeline, seed, level).fit_conformalize(x, y)
        background = np.asarray(fitted[:-1].transform(x), dtype=float).mean(axis=0)
        return cls(fitted, ranges, level, background)

    def serve(self) -> None:
        """Compile the point pipeline and the range's fold pipelines for serving (in memory:
        the artifact keeps the scikit-learn objects). Same answers, a fraction of the time."""
        from model_registry.fast import ConformalPlus, FeatureCache, compile_pipeline

        shared = FeatureCache()  # one frame, many pipelines: its features are derived once
        self._point = compile_pipeline(self.pipeline, shared)
        self._conformal = ConformalPlus.of(self.ranges)  # None: MAPIE computes the range
        inside = mapie_compat.fitted(self.ranges)
        if inside is None:
            raise TypeError(f"the ranges of {type(self).__name__} are not a fitted "
                            "CrossConformalRegressor")
        folds = inside.ensemble
        folds.single_estimator_ = self._point
        folds.estimators_ = [compile_pipeline(e, shared) for e in folds.estimators_]
        self._folds = folds.estimators_

    def pipelines(self) -> list[Pipeline]:
        """The point pipeline and the fold pipelines of the range (MAPIE keeps them inside)."""
        inside = mapie_compat.fitted(self.ranges)
        return [self.pipeline, *(inside.ensemble.estimators_ if inside else [])]

    def predict(self, x: pd.DataFrame | Cars) -> np.ndarray:
        """Point prices (what `result` has always been) of a frame or of columns of cars."""
        point = getattr(self, "_point", None)
        return np.asarray(point.predict(x) if point is not None
                          else self.pipeline.predict(frame_of(x)), dtype=float)

    def price(self, x: pd.DataFrame | Cars) -> list[Priced]:
        """Point prices with their ranges; the range always holds the price. Served, columns
        of cars (model_registry.features.columns_of) need no frame at all."""
        points = self.predict(x)
        conformal = getattr(self, "_conformal", None)
        if conformal is not None:  # served: the same range, computed directly
            lows, highs = conformal.bounds(np.column_stack([f.predict(x) for f in self._folds]))
        else:
            _, bounds = self.ranges.predict_interval(frame_of(x))
            lows, highs = bounds[:, 0, 0], bounds[:, 1, 0]
        return [Priced(float(p), float(min(lo, p)), float(max(hi, p)))
                for p, lo, hi in zip(points, lows, highs, strict=True)]

    def explain(self, x: pd.DataFrame) -> list[dict[str, Any]]:
        """Per car: `base` (the price of an average car) and each input feature's effect; the
        effects add up to the price minus the base, to the cent."""
        pre, model = self.pipeline[:-1], self.pipeline[-1]
        xt = np.asarray(pre.transform(x), dtype=float)
        names = list(self.pipeline.named_steps["preprocess"].get_feature_names_out())
        base_log, phi = log_effects(model.regressor_, xt, self.background)
        grouped = _group(phi, names)
        return [_in_price_units(float(base_log), row, float(price), x.iloc[i])
                for i, (row, price) in enumerate(zip(grouped, self.predict(x), strict=True))]


def log_effects(regressor: RegressorMixin, xt: np.ndarray,
                background: np.ndarray) -> tuple[float, np.ndarray]:
    """The base and per-column effects in the model's own (log-price) units: exact for a
    linear model, TreeSHAP for trees, their average for a blend of both."""
    if isinstance(regressor, VotingRegressor):
        parts = [log_effects(est, xt, background) for est in regressor.estimators_]
        return (float(np.mean([b for b, _ in parts])), np.mean([p for _, p in parts], axis=0))
    if isinstance(regressor, RidgeCV) or hasattr(regressor, "coef_"):
        coef = np.asarray(regressor.coef_, dtype=float)
        base = float(regressor.intercept_ + coef @ background)
        return base, (xt - background) * coef
    import shap  # only the explaining process pays for importing it

    explainer = shap.TreeExplainer(regressor)
    values = np.asarray(explainer.shap_values(xt, check_additivity=False), dtype=float)
    return float(np.ravel(explainer.expected_value)[0]), values


def _group(phi: np.ndarray, names: list[str]) -> np.ndarray:
    """Effects of transformed columns -> effects of the 25 input features."""
    index = {f: i for i, f in enumerate(FEATURES)}
    share = np.zeros((len(names), len(FEATURES)))
    for j, name in enumerate(names):
        kind, _, column = name.partition("__")
        if kind == "cat":
            source = next(f for f in sorted(index, key=len, reverse=True) if column.startswith(f + "_"))
            share[j, index[source]] = 1.0
        elif column in SOURCES:
            for source in SOURCES[column]:
                share[j, index[source]] = 1.0 / len(SOURCES[column])
        else:
            share[j, index[column]] = 1.0
    return phi @ share


def _in_price_units(base_log: float, effects_log: np.ndarray, price: float,
                    row: pd.Series) -> dict[str, Any]:
    """price = exp(base + Σφ): share price − exp(base) among the features in proportion to
    their φ (the scale expm1(S)/S stays finite as S → 0), then settle the cents so that
    base + Σ effect equals the rounded price exactly."""
    total = float(effects_log.sum())
    base = math.exp(base_log)
    scale = base * (math.expm1(total) / total if abs(total) > 1e-12 else 1.0)
    cents = np.round(effects_log * scale * 100).astype(int)
    base_cents, price_cents = round(base * 100), round(price * 100)
    if cents.size:
        cents[int(np.argmax(np.abs(cents)))] += price_cents - base_cents - int(cents.sum())
    contributions = [{"feature": f, "value": _plain(row[f]), "effect": c / 100}
                     for f, c in zip(FEATURES, cents, strict=True) if c != 0]
    contributions.sort(key=lambda c: -abs(c["effect"]))
    return {"base": base_cents / 100, "contributions": contributions}


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value
