"""The one place that reads MAPIE's private state, for the minor version it was written
against (pyproject.toml pins the same; any other is refused at import).

A fitted `CrossConformalRegressor` keeps what serving needs out of its public API: the inner
regressor (its fold models, conformity scores and fold weights), the confidence levels it was
fitted for, and the prediction parameters. The fast range (model_registry/fast.py) computes
the same numbers from them, and serving swaps the fold models for compiled ones
(model_registry/pricing.py); both go through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra.versions import require

TESTED = ("1.6",)  # MAPIE minor versions this module was written against
require("mapie", TESTED, "model_registry/mapie_compat.py")

if TYPE_CHECKING:
    from mapie.estimator.regressor import EnsembleRegressor
    from mapie.regression.regression import _MapieRegressor


@dataclass(frozen=True)
class Fitted:
    """What a fitted CrossConformalRegressor holds inside."""

    regressor: _MapieRegressor  # method, conformity_score_function_, conformity_scores_
    ensemble: EnsembleRegressor  # its folds: estimators_, single_estimator_, k_, agg_function
    alphas: list[float]  # 1 - confidence level, one per level it was fitted for
    predict_params: dict[str, Any]


def fitted(ranges: object) -> Fitted | None:
    """The insides of a fitted CrossConformalRegressor; None for anything else."""
    regressor = getattr(ranges, "_mapie_regressor", None)
    ensemble = getattr(regressor, "estimator_", None)
    if regressor is None or ensemble is None:
        return None
    return Fitted(regressor, ensemble, list(getattr(ranges, "_alphas", None) or []),
                  dict(getattr(ranges, "_predict_params", None) or {}))
