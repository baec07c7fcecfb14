"""Validation of a car's features against a model card's input schema (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeAlias

from domain.errors import InvalidFeatures
from domain.text import printable, text_problem

Schema = Mapping[str, Mapping[str, Any]]  # a model card's input schema, as JSON
Value: TypeAlias = str | int | float
Car: TypeAlias = dict[str, Value]  # a car's features, validated: what the model gets
MAX_TEXT = 64


def _unwrap(value: object) -> object:
    # The documented form sends one-element lists: {"horsepower": [110]}.
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _numeric(value: object, spec: Mapping[str, Any]) -> tuple[float | int | None, str]:
    lo, hi = spec["allowed_min"], spec["allowed_max"]
    whole = spec.get("dtype") == "int"
    bounds = f"a {'whole number' if whole else 'number'} from {lo} to {hi}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"must be {bounds}, got {printable(value)}"
    # Ints are compared exactly: a 400-digit integer has no float, and is simply out of range.
    if isinstance(value, float) and not math.isfinite(value):
        return None, f"must be {bounds}, got {printable(value)}"
    if not lo <= value <= hi:
        return None, f"must be {bounds}, got {printable(value)}"
    if whole:
        if value != int(value):
            return None, f"must be {bounds}, got {printable(value)}"
        return int(value), ""
    return float(value), ""


def _text(value: object, limit: int) -> tuple[str | None, str]:
    if not isinstance(value, str):
        return None, f"must be a text of at most {limit} characters, got {printable(value)}"
    if problem := text_problem(value):
        return None, problem
    if len(value) > limit:
        return None, f"must be at most {limit} characters, got {len(value)}"
    return value.strip().lower(), ""


def _categorical(value: object, spec: Mapping[str, Any]) -> tuple[str | None, str]:
    # A category the model never saw (or an empty one) is accepted: the pipeline encodes it as
    # unseen (see unseen_categories); only what is not text at all is refused.
    clean, err = _text(value, MAX_TEXT)
    if clean is None:
        return None, err
    return spec.get("aliases", {}).get(clean, clean), ""


def validate_features(schema: Schema, raw: Mapping[str, object]) -> Car:
    """The features as the model gets them, or InvalidFeatures naming every bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidFeatures({"data": "must be an object with one value per feature"})
    errors: dict[str, str] = {}
    clean: Car = {}
    for name, spec in schema.items():
        if name not in raw:
            errors[name] = "is required"
            continue
        value = _unwrap(raw[name])
        kind = spec["kind"]
        good: Value | None
        if kind == "numeric":
            good, err = _numeric(value, spec)
        elif kind == "categorical":
            good, err = _categorical(value, spec)
        else:
            good, err = _text(value, spec.get("max_length", MAX_TEXT))
        if err or good is None:
            errors[name] = err
        else:
            clean[name] = good
    unknown = sorted(str(k) for k in raw if k not in schema)
    for name in unknown[:5]:
        errors[printable(name).strip("'\"")] = "is not a feature of this model"
    if errors:
        raise InvalidFeatures(errors)
    return clean


def unseen_categories(schema: Schema, clean: Mapping[str, Value]) -> list[str]:
    """The categorical features whose value the model never saw in training (a warning)."""
    return [name for name, spec in schema.items()
            if spec["kind"] == "categorical" and clean.get(name) not in spec["categories"]]
