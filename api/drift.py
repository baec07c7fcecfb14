"""Drift in sight: each model's features, training data against the last priced cars.

Computed when asked (the Models page, /metrics) from the read table of jobs, at most once a
minute per model and process; a feature above the threshold is logged as a warning then.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.drift import FeatureDrift, Reference, drift, references

if TYPE_CHECKING:
    from infra.pg import Pool
    from infra.settings import Settings
    from model_registry.store import Registry

log = logging.getLogger("carprice.drift")


@dataclass(frozen=True)
class DriftReport:
    """A model's drift over its last `cars` priced cars (at most `window`)."""

    model_name: str
    window: int
    cars: int
    threshold: float
    features: list[FeatureDrift]
    min_cars: int = 1  # below it, nothing is flagged: a handful of cars is not a population

    @property
    def drifting(self) -> list[str]:
        """The features above the threshold (none from fewer than `min_cars` cars)."""
        if self.cars < self.min_cars:
            return []
        return [f.feature for f in self.features if f.psi > self.threshold]


class DriftMonitor:
    """Drift reports per model, cached; the shipped dataset's reference is built once."""

    def __init__(self, settings: Settings, db: Pool, registry: Registry | None = None) -> None:
        self.settings, self.db, self.registry = settings, db, registry
        self._lock = threading.Lock()
        self._reference: list[Reference] | None = None
        self._cached: dict[str, tuple[float, DriftReport]] = {}

    def reference(self, model_name: str | None = None) -> list[Reference]:
        """Every feature's distribution in the data the model's champion was trained on (its
        card's profile), or in the shipped dataset (cards from before profiles were kept)."""
        if model_name and self.registry is not None:
            profile = self.registry.card(model_name).data_profile
            if profile:
                return [Reference(p["feature"], tuple(p["edges"]), tuple(p["expected"]),
                                  tuple(p["categories"])) for p in profile]
        if self._reference is None:
            from model_registry.features import CATEGORICAL, NUMERIC, load_dataset

            x, _ = load_dataset(self.settings.data_dir)
            self._reference = references(x.to_dict("records"), NUMERIC, CATEGORICAL)
        return self._reference

    def report(self, model_name: str) -> DriftReport:
        """The model's drift, at most DRIFT_CACHE_SECONDS (60) old."""
        with self._lock:
            found = self._cached.get(model_name)
            if found and time.monotonic() - found[0] < self.settings.drift_cache_seconds:
                return found[1]
            made = self._measure(model_name)
            self._cached[model_name] = (time.monotonic(), made)
        if made.drifting:
            log.warning("drift: %s: the last %d priced cars moved from the training data on %s "
                        "(PSI above %.2f)", model_name, made.cars, ", ".join(
                            f"{f.feature} {f.psi:.2f}" for f in made.features
                            if f.feature in made.drifting), made.threshold)
        return made

    def _measure(self, model_name: str) -> DriftReport:
        window = self.settings.drift_window
        with self.db.connection() as conn:
            rows = conn.execute("SELECT features FROM prediction_history WHERE model_name = %s "
                                "AND status = 'finished' ORDER BY created_at DESC LIMIT %s",
                                (model_name, window)).fetchall()
        cars = [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows]
        features = [d for ref in self.reference(model_name)
                    if (d := drift(ref, [c.get(ref.feature) for c in cars])) is not None]
        return DriftReport(model_name, window, len(cars), self.settings.drift_psi_threshold,
                           sorted(features, key=lambda f: -f.psi), self.settings.drift_min_cars)
