"""Cross-validate, fit and register the models."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import RepeatedKFold
from sklearn.pipeline import Pipeline

from domain.drift import references
from model_registry.card import ModelCard, build_input_schema
from model_registry.features import (
    CATEGORICAL,
    DATASET_DIR,
    DATASET_FILE,
    NUMERIC,
    load_dataset,
    training_data,
)
from model_registry.pipeline import MODELS
from model_registry.prices import EXPLAIN_PRICE, by_rank
from model_registry.pricing import INNER_FOLDS, LEVEL, PriceModel, conformal
from model_registry.store import Registry

N_SPLITS, N_REPEATS, SEED = 5, 5, 42

# progress(model name, folds done, folds total)
Progress = Callable[[str, int, int], None]


@dataclass
class CvResult:
    """Per-fold scores, and the out-of-fold predictions (with their ranges) of the first
    repeat. `coverage` and `width`: of the 80 % CV+ range fitted on each training part,
    the share of the held-out prices inside it and its mean width (in dollars)."""

    r2: list[float]
    rmse: list[float]
    mae: list[float]
    oof: list[tuple[float, float]]
    coverage: list[float] = field(default_factory=list)
    width: list[float] = field(default_factory=list)
    oof_range: list[tuple[float, float]] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and std of every metric."""
        metrics = [("r2", self.r2), ("rmse", self.rmse), ("mae", self.mae),
                   ("coverage", self.coverage), ("width", self.width)]
        return {m: {"mean": float(np.mean(v)), "std": float(np.std(v))} for m, v in metrics if v}


def _fold(pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, train: np.ndarray, test: np.ndarray,
          seed: int, ranges: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One CV fold: the held-out predictions and, with `ranges`, their conformal bounds."""
    model = clone(pipeline).fit(x.iloc[train], y.iloc[train])
    pred = model.predict(x.iloc[test])
    if not ranges:
        return pred, None, None
    # the range is fitted on the training part alone, as serving fits it on all rows
    _, bounds = conformal(pipeline, seed).fit_conformalize(
        x.iloc[train], y.iloc[train]).predict_interval(x.iloc[test])
    return pred, np.minimum(bounds[:, 0, 0], pred), np.maximum(bounds[:, 1, 0], pred)


def cross_validate(
    pipeline: Pipeline, x: pd.DataFrame, y: pd.Series, *, n_splits: int = N_SPLITS,
    n_repeats: int = N_REPEATS, seed: int = SEED, progress: Callable[[int, int], None] | None = None,
    ranges: bool = True, n_jobs: int | None = None,
) -> CvResult:
    """Repeated K-fold CV; every fold fits a fresh clone on its training part only. The folds
    run on every core (`n_jobs`, default: all); the result does not depend on how many."""
    cv = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    result = CvResult([], [], [], [])
    oof, low, high = np.zeros(len(y)), np.zeros(len(y)), np.zeros(len(y))
    total = n_splits * n_repeats
    splits = list(cv.split(x))
    folds = Parallel(n_jobs=n_jobs or os.cpu_count() or 1, return_as="generator")(
        delayed(_fold)(pipeline, x, y, train, test, seed, ranges) for train, test in splits)
    for i, ((_, test), (pred, lo, hi)) in enumerate(zip(splits, folds, strict=True)):
        actual = y.iloc[test].to_numpy()
        result.r2.append(float(r2_score(actual, pred)))
        result.rmse.append(float(np.sqrt(mean_squared_error(actual, pred))))
        result.mae.append(float(mean_absolute_error(actual, pred)))
        if lo is not None and hi is not None:
            result.coverage.append(float(np.mean((actual >= lo) & (actual <= hi))))
            result.width.append(float(np.mean(hi - lo)))
            if i < n_splits:
                low[test], high[test] = lo, hi
        if i < n_splits:
            oof[test] = pred
        if progress:
            progress(i + 1, total)
    result.oof = [(float(a), round(float(p), 2)) for a, p in zip(y.to_numpy(), oof, strict=True)]
    if ranges:
        result.oof_range = [(round(float(lo), 2), round(float(hi), 2))
                            for lo, hi in zip(low, high, strict=True)]
    return result


@dataclass
class Trained:
    """A model cross-validated and fitted on all rows, not registered yet."""

    card: ModelCard
    fitted: PriceModel


def data_profile(x: pd.DataFrame) -> list[dict[str, Any]]:
    """Each feature's distribution in the training rows, as drift reads it."""
    return [asdict(r) for r in references(x.to_dict("records"), NUMERIC, CATEGORICAL)]


def fit_model(
    name: str, x: pd.DataFrame, y: pd.Series, registry: Registry, *, seed: int = SEED,
    n_splits: int = N_SPLITS, n_repeats: int = N_REPEATS, progress: Progress | None = None,
) -> Trained:
    """Cross-validate one model and fit it on all rows (its price is set by `price_by_rank`)."""
    build = MODELS[name]
    pipeline = build(seed)
    cv = cross_validate(
        pipeline, x, y, n_splits=n_splits, n_repeats=n_repeats, seed=seed,
        progress=(lambda done, total: progress(name, done, total)) if progress else None,
    )
    fitted = PriceModel.fit(pipeline, x, y, seed)
    card = ModelCard(
        name=name, version=registry.next_version(name), price=0,
        challenger=bool(registry.versions(name)),
        created_at=datetime.now(UTC).isoformat(), sklearn_version=sklearn.__version__,
        sha256="", training_rows=len(x), metrics=cv.summary(),
        cv={"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed},
        input_schema=build_input_schema(x), description=(build.__doc__ or "").strip(),
        data_profile=data_profile(x),
        oof=cv.oof, oof_range=cv.oof_range, explain_price=EXPLAIN_PRICE,
        interval={"level": LEVEL, "method": "CV+ (MAPIE CrossConformalRegressor, relative "
                  f"score, {INNER_FOLDS} folds), fitted on the training part of every CV fold"},
    )
    return Trained(card, fitted)


def train_all(data_dir: Path | None, registry: Registry, *, names: list[str] | None = None,
              progress: Progress | None = None, data_file: Path | None = None,
              **kwargs: int) -> list[ModelCard]:
    """Train and register every model (or the named ones) from the dataset, or from an
    operator's CSV with its columns (`data_file`, checked whole first: CsvProblem lists its
    bad rows). Each card notes the data's sha256, file name and row count.

    A model's first version is its champion; a later one enters as a challenger (priced in the
    shadow until promoted). Prices go by rank among the champions, so the better model always
    costs more; a challenger moves no price.
    """
    if data_file is None:
        source = (data_dir or DATASET_DIR) / DATASET_FILE
        x, y = load_dataset(data_dir)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
    else:
        source = data_file
        x, y, digest = training_data(data_file)
    trained = [fit_model(n, x, y, registry, progress=progress, **kwargs) for n in (names or MODELS)]
    for t in trained:
        t.card.data_sha256, t.card.data_file = digest, source.name
    return register_ranked(registry, trained)


def register_ranked(registry: Registry, trained: list[Trained]) -> list[ModelCard]:
    """Register freshly trained models, then hand the price points out again by CV rank
    among the champions (a new model's first version is one; challengers rank once promoted):
    the better model always costs more."""
    r2 = {c.name: c.metrics["r2"]["mean"] for c in registry.champion_cards()}
    r2 |= {t.card.name: t.card.metrics["r2"]["mean"] for t in trained if not t.card.challenger}
    prices = by_rank(r2, list(registry.prices.get().values()))
    for t in trained:
        t.card.price = prices[t.card.name]  # the price its model had when it was trained
    cards = [registry.register(t.card, t.fitted) for t in trained]
    registry.prices.put(prices)
    return cards


def train_model(name: str, x: pd.DataFrame, y: pd.Series, registry: Registry, *, seed: int = SEED,
                n_splits: int = N_SPLITS, n_repeats: int = N_REPEATS) -> ModelCard:
    """Cross-validate, fit and register one model."""
    fitted = fit_model(name, x, y, registry, seed=seed, n_splits=n_splits, n_repeats=n_repeats)
    return register_ranked(registry, [fitted])[0]
