"""What the benchmarks share: percentiles, a real car, the write side."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from infra.settings import Settings

# The models the benchmarks' clients ask for (the three `carprice train` registers).
MODELS = ("linear_regression", "gradient_boosting", "random_forest")

if TYPE_CHECKING:
    from commands.application import CarpriceApp


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latency samples in milliseconds."""
    if not samples_ms:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2),
            "max": round(max(samples_ms), 2)}


def sample_car(settings: Settings | None = None) -> dict[str, Any]:
    """A real car from the dataset, as the API receives it."""
    from model_registry.features import load_dataset

    x, _ = load_dataset(settings.data_dir if settings else None)
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in x.iloc[0].to_dict().items()}


def write_side(settings: Settings, database_url: str, pool_size: int | None = None) -> CarpriceApp:
    """A CarpriceApp on this database, with the settings' registry as catalogue."""
    from commands.application import CarpriceApp
    from model_registry.catalog import RegistryCatalog
    from model_registry.store import Registry

    found = settings.model_copy(update={"database_url": database_url})
    return CarpriceApp.from_settings(found, RegistryCatalog(Registry(found.registry_dir)), pool_size)
