"""Validation of a car's features against a model card's input schema (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from domain.errors import InvalidFeatures

Schema = Mapping[str, Mapping[str, Any]]


def _unwrap(value: Any) -> Any:
    # The documented form sends one-element lists: {"horsepower": [110]}.
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _numeric(name: str, value: Any, spec: Mapping[str, Any]) -> tuple[float | int | None, str]:
    lo, hi = spec["allowed_min"], spec["allowed_max"]
    bounds = f"a number from {lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"must be {bounds}, got {value!r}"[:200]
    if not math.isfinite(value) or not lo <= value <= hi:
        return None, f"must be {bounds}, got {value}"
    if spec.get("dtype") == "int":
        if value != int(value):
            return None, f"must be a whole number from {lo} to {hi}, got {value}"
        return int(value), ""
    return float(value), ""


def _categorical(value: Any, spec: Mapping[str, Any]) -> tuple[str | None, str]:
    allowed = spec["categories"]
    if not isinstance(value, str):
        return None, f"must be one of {', '.join(allowed)}"
    v = value.strip().lower()
    v = spec.get("aliases", {}).get(v, v)
    if v not in allowed:
        return None, f"must be one of {', '.join(allowed)}; got {value[:40]!r}"
    return v, ""


def _text(value: Any, spec: Mapping[str, Any]) -> tuple[str | None, str]:
    limit = spec.get("max_length", 64)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return None, f"must be a non-empty text of at most {limit} characters"
    return value.strip().lower(), ""


def validate_features(schema: Schema, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The features as the model gets them, or InvalidFeatures naming every bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidFeatures({"data": "must be an object with one value per feature"})
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in raw:
            errors[name] = "is required"
            continue
        value = _unwrap(raw[name])
        kind = spec["kind"]
        if kind == "numeric":
            clean[name], err = _numeric(name, value, spec)
        elif kind == "categorical":
            clean[name], err = _categorical(value, spec)
        else:
            clean[name], err = _text(value, spec)
        if err:
            errors[name] = err
    unknown = sorted(set(raw) - set(schema))
    for name in unknown[:5]:
        errors[str(name)[:40]] = "is not a feature of this model"
    if errors:
        raise InvalidFeatures(errors)
    return clean
