"""What a registered version answers for cars: a price and its range each."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_registry.features import Cars, frame_of

if TYPE_CHECKING:
    from model_registry.store import Servable

# a car's price and its range ({"low", "high", "level"}; None for versions without ranges)
Quote = tuple[float, dict[str, float] | None]


def quote(model: Servable, cars: Cars) -> list[Quote]:
    """(price, range) per car; versions trained before ranges existed give no range (and are
    scikit-learn pipelines: they are given a frame)."""
    if not hasattr(model, "price"):
        return [(float(p), None) for p in model.predict(frame_of(cars))]
    return [(p.price, {"low": round(p.low, 2), "high": round(p.high, 2), "level": model.level})
            for p in model.price(cars)]
