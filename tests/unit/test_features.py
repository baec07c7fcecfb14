"""Feature validation against a model card's schema."""

from __future__ import annotations

import json

import pytest

from domain.errors import InvalidFeatures
from domain.features import unseen_categories, validate_features
from domain.text import printable, text_problem
from tests.fakes import CAR, SCHEMA


def test_valid_car_is_normalised() -> None:
    clean = validate_features(SCHEMA, {**CAR, "brand": " VW ", "horsepower": 110.0})
    assert clean == {"horsepower": 110, "fueltype": "gas", "brand": "volkswagen", "model": "corolla"}


def test_one_element_lists_are_accepted() -> None:
    listed = {k: [v] for k, v in CAR.items()}
    assert validate_features(SCHEMA, listed) == validate_features(SCHEMA, CAR)


def test_every_bad_field_is_named_with_what_is_allowed() -> None:
    bad = {"horsepower": -1, "fueltype": 7, "model": "x" * 65, "color": "red"}
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, bad)
    errors = info.value.errors
    assert "from 0 to 528" in errors["horsepower"]
    assert "must be a text" in errors["fueltype"]
    assert errors["brand"] == "is required"
    assert "at most 64" in errors["model"]
    assert "not a feature" in errors["color"]


def test_an_empty_or_unknown_category_is_accepted_as_unseen_with_a_warning() -> None:
    # the dataset's two subaru cars have a CarName without a model: old clients send ""
    clean = validate_features(SCHEMA, {**CAR, "model": "", "brand": "Tesla", "fueltype": ""})
    assert (clean["model"], clean["brand"], clean["fueltype"]) == ("", "tesla", "")
    assert unseen_categories(SCHEMA, clean) == ["fueltype", "brand"]
    assert unseen_categories(SCHEMA, validate_features(SCHEMA, CAR)) == []


@pytest.mark.parametrize("value", ["giulia\x00", "\ud800", "a\udfffb", "tab\there", "bell\x07",
                                   "del\x7f", "c1\x85"])
@pytest.mark.parametrize("field", ["model", "brand", "fueltype"])
def test_unstorable_text_in_any_text_feature_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, {**CAR, field: value})
    assert list(info.value.errors) == [field]
    message = str(info.value)
    json.dumps(message).encode("utf-8")  # the error itself can be sent and logged
    assert "\x00" not in message and ("surrogate" in message or "control" in message)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e308, 10**400,
                                   -(10**400), True, "110", [1, 2], {"a": 1}, 110.5, None])
def test_numbers_must_be_finite_in_range_and_whole_for_ints(value: object) -> None:
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, {**CAR, "horsepower": value})
    assert list(info.value.errors) == ["horsepower"]
    assert len(info.value.errors["horsepower"]) < 200


def test_unknown_feature_names_are_printable_in_the_error() -> None:
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, {**CAR, "co\x00lor\ud800": 1})
    (name,) = [k for k in info.value.errors if k not in SCHEMA]
    assert "\x00" not in name and "\ud800" not in name
    name.encode("utf-8")


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidFeatures):
        validate_features(SCHEMA, ["not", "a", "dict"])  # type: ignore[arg-type]


def test_text_problem_and_printable() -> None:
    assert text_problem("Zoë 🚗 ok") is None
    assert "control" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("\ud83d") or "")
    assert printable(10**400).startswith("a number of about 401 digits")
    assert printable("x" * 100).endswith("\u2026") and len(printable("x" * 100)) == 40
