"""Real cars from the dataset shipped with model_registry, as the API receives them."""

from __future__ import annotations

from functools import cache
from typing import Any

from model_registry.features import load_dataset


@cache
def _frame() -> Any:
    return load_dataset()[0]


def car(i: int = 0) -> dict[str, Any]:
    """The i-th car of the dataset (plain Python values)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in _frame().iloc[i].to_dict().items()}


def cars() -> list[dict[str, Any]]:
    """Every car of the dataset."""
    return [car(i) for i in range(len(_frame()))]
