"""The price list: credits per model, kept apart from the models.

Changing a price needs no training, and a job keeps the price it was charged (the job's
events record it). The rule is that the better model costs more: prices rise with the
cross-validated R². Training hands the price points out again by rank; an operator's
change that would break the rule is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

FILE = "prices.json"
PRICE_TIERS = (10, 25, 40)  # the price points of a new registry, cheapest first
EXPLAIN_PRICE = 5  # the surcharge of an explanation (SHAP or exact linear effects)


class PriceOrderError(ValueError):
    """A price list in which a better model would not cost more."""


def check_order(prices: Mapping[str, int], r2: Mapping[str, float]) -> None:
    """Refuse prices that do not rise with the models' CV R² (models without an R² are free)."""
    ranked = sorted((n for n in prices if n in r2), key=lambda n: r2[n])
    for worse, better in zip(ranked, ranked[1:], strict=False):
        if prices[better] <= prices[worse]:
            raise PriceOrderError(
                f"{better} (CV R² {r2[better]:.3f}) must cost more than {worse} (CV R² "
                f"{r2[worse]:.3f}, {prices[worse]} credits), not {prices[better]}")
    for name, price in prices.items():
        if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
            raise PriceOrderError(f"the price of {name} must be a positive whole number of credits")


def by_rank(r2: Mapping[str, float], points: list[int]) -> dict[str, int]:
    """Price points (the current ones, else PRICE_TIERS) handed to models by CV rank."""
    ranked = sorted(r2, key=lambda n: (r2[n], n))
    pool = sorted(points) or list(PRICE_TIERS)
    while len(pool) < len(ranked):
        pool.append(pool[-1] + 15)
    return dict(zip(ranked, pool[:len(ranked)], strict=True))


class PriceList:
    """`<registry>/prices.json`; read again whenever the file changes."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / FILE
        self._seen: tuple[float, dict[str, int]] | None = None

    def get(self) -> dict[str, int]:
        """model name -> credits (empty when no list was written yet)."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._seen is None or self._seen[0] != mtime:
            self._seen = (mtime, {str(k): int(v) for k, v in json.loads(self.path.read_text()).items()})
        return dict(self._seen[1])

    def put(self, prices: Mapping[str, int]) -> None:
        """Replace the list (atomically: readers see the old or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(sorted(prices.items())), indent=2) + "\n")
        os.replace(tmp, self.path)
        self._seen = None
