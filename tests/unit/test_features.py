"""Feature validation against a model card's schema."""

from __future__ import annotations

import pytest

from domain.errors import InvalidFeatures
from domain.features import validate_features
from tests.fakes import CAR, SCHEMA


def test_valid_car_is_normalised() -> None:
    clean = validate_features(SCHEMA, {**CAR, "brand": " VW ", "horsepower": 110.0})
    assert clean == {"horsepower": 110, "fueltype": "gas", "brand": "volkswagen", "model": "corolla"}


def test_one_element_lists_are_accepted() -> None:
    listed = {k: [v] for k, v in CAR.items()}
    assert validate_features(SCHEMA, listed) == validate_features(SCHEMA, CAR)


def test_every_bad_field_is_named_with_what_is_allowed() -> None:
    bad = {"horsepower": -1, "fueltype": "steam", "model": "", "color": "red"}
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, bad)
    errors = info.value.errors
    assert "from 0 to 528" in errors["horsepower"]
    assert "diesel, gas" in errors["fueltype"]
    assert errors["brand"] == "is required"
    assert "non-empty" in errors["model"]
    assert "not a feature" in errors["color"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308, True, "110", [1, 2], {"a": 1},
                                   110.5])
def test_numbers_must_be_finite_in_range_and_whole_for_ints(value: object) -> None:
    with pytest.raises(InvalidFeatures) as info:
        validate_features(SCHEMA, {**CAR, "horsepower": value})
    assert list(info.value.errors) == ["horsepower"]


def test_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidFeatures):
        validate_features(SCHEMA, ["not", "a", "dict"])  # type: ignore[arg-type]
