"""`carprice bench serve`: what one price with its range costs, as trained and as served.

For every registered model (its latest version), the artifact as it was trained
(scikit-learn pipelines, MAPIE's CV+ range) and its serving form (`Registry.load`: compiled
pipelines, numba tree walks, the range computed directly) price the same cars of the dataset,
in batches of each size, alternately in one run. It prints the ms per call of each and how
far apart their answers are (relative; 0 or rounding).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from model_registry.features import load_dataset
from model_registry.store import Registry

SIZES = (1, 3, 20)


def _ms_per_call(price: Callable[[pd.DataFrame], object], cars: pd.DataFrame, seconds: float) -> float:
    price(cars)  # warm
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        price(cars)
        calls += 1
    return 1000 * elapsed / calls


def bench_serve(registry: Registry, sizes: tuple[int, ...] = SIZES,
                seconds: float = 1.0) -> dict[str, Any]:
    """Per model and batch size: ms per price() call as trained and as served. Figures only."""
    x, _ = load_dataset()
    rows: list[dict[str, Any]] = []
    for card in registry.champion_cards():
        trained = registry.load_as_trained(card.name, card.version)
        served = registry.load(card.name, card.version)
        if not hasattr(served, "price"):  # a version from before ranges: nothing to compare
            continue
        for size in sizes:
            cars = x.iloc[:size]
            trained_ms = served_ms = 0.0
            for _ in range(2):  # alternated: the machine's noise falls on both
                trained_ms += _ms_per_call(trained.price, cars, seconds / 2)
                served_ms += _ms_per_call(served.price, cars, seconds / 2)
            gap = max(max(abs(s.price - t.price) / t.price, abs(s.low - t.low) / t.low,
                          abs(s.high - t.high) / t.high)
                      for s, t in zip(served.price(x), trained.price(x), strict=True))
            rows.append({"model": card.name, "version": card.version, "cars": size,
                         "trained_ms": round(trained_ms / 2, 3), "served_ms": round(served_ms / 2, 3),
                         "speedup": round(trained_ms / served_ms, 1),
                         "max_relative_difference": gap})
    return {"benchmark": "serve", "rows": rows}
