"""Model cards: what a registered model is, how good it is, and what input it accepts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from model_registry.features import BRAND_ALIASES, CATEGORICAL, FEATURES, NUMERIC

INTEGER_FEATURES = {"symboling", "curbweight", "enginesize", "horsepower", "peakrpm",
                    "citympg", "highwaympg"}
# Ranges fixed by definition rather than by the data seen.
FIXED_RANGES = {"symboling": (-3, 3)}


@dataclass
class ModelCard:
    """The JSON card stored beside every artifact."""

    name: str
    version: str
    price: int
    created_at: str
    sklearn_version: str
    sha256: str
    training_rows: int
    metrics: dict[str, dict[str, float]]
    cv: dict[str, int]
    input_schema: dict[str, dict[str, Any]]
    description: str = ""
    # Out-of-fold (actual, predicted) pairs of the first CV repeat, for plots.
    oof: list[tuple[float, float]] = field(default_factory=list)
    # The price range every result carries: its level and method (empty before ranges
    # existed), and the (low, high) of each out-of-fold prediction above.
    interval: dict[str, Any] = field(default_factory=dict)
    # The surcharge of an explanation, in credits (0: this version cannot explain).
    explain_price: int = 0
    oof_range: list[tuple[float, float]] = field(default_factory=list)
    # The sha256 of the CSV file it was trained on (empty on cards from before it was noted;
    # those were trained on the dataset shipped with carprice); `training_rows` is its count.
    data_sha256: str = ""
    data_file: str = ""  # that file's name, as given to `carprice train --data`
    # A version registered when its model already had one enters as a challenger: it prices
    # in the shadow until it is promoted (`carprice models promote`). Cards from before the
    # lifecycle have False, so the latest of those serves, as it did then.
    challenger: bool = False
    # What drift compares recent cars with: each feature's distribution in the data it was
    # trained on (domain.drift.Reference as JSON). Empty on cards from before: those were
    # trained on the shipped dataset, which drift falls back to.
    data_profile: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """The card as stored on disk."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Read a stored card."""
        raw = json.loads(text)
        raw["oof"] = [tuple(p) for p in raw.get("oof", [])]
        raw["oof_range"] = [tuple(p) for p in raw.get("oof_range", [])]
        return cls(**raw)


def _num(value: float, integer: bool) -> float | int:
    return int(round(value)) if integer else round(float(value), 4)


def build_input_schema(x: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """The accepted input of each of the 25 features, built from the training data."""
    schema: dict[str, dict[str, Any]] = {}
    for col in FEATURES:
        if col in NUMERIC:
            integer = col in INTEGER_FEATURES
            lo, hi = float(x[col].min()), float(x[col].max())
            span = hi - lo
            # Accept cars somewhat outside what was seen, never absurd ones.
            allowed = FIXED_RANGES.get(col, (max(0.0, lo - span) if lo >= 0 else lo - span,
                                             hi + span))
            schema[col] = {
                "kind": "numeric", "dtype": "int" if integer else "float",
                "min": _num(lo, integer), "max": _num(hi, integer),
                "allowed_min": _num(allowed[0], integer), "allowed_max": _num(allowed[1], integer),
                "default": _num(float(x[col].median()), integer),
            }
        elif col in CATEGORICAL:
            values = sorted(x[col].astype(str).unique().tolist())
            spec: dict[str, Any] = {"kind": "categorical", "categories": values,
                                    "default": str(x[col].mode().iloc[0])}
            if col == "brand":
                spec["aliases"] = dict(BRAND_ALIASES)
            schema[col] = spec
        else:  # model: free text, with the known names per brand as suggestions
            by_brand = {
                b: sorted(g["model"].astype(str).unique().tolist())
                for b, g in x.groupby("brand")
            }
            schema[col] = {"kind": "text", "max_length": 64, "by_brand": by_brand,
                           "default": str(x[col].mode().iloc[0])}
    return schema
