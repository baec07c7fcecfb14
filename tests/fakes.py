"""Handwritten fakes for unit tests (no mocks of our own classes)."""

from __future__ import annotations

from domain.catalog import ModelOffer
from domain.errors import UnknownModel

SCHEMA = {
    "horsepower": {"kind": "numeric", "dtype": "int", "min": 48, "max": 288,
                   "allowed_min": 0, "allowed_max": 528, "default": 95},
    "fueltype": {"kind": "categorical", "categories": ["diesel", "gas"], "default": "gas"},
    "brand": {"kind": "categorical", "categories": ["toyota", "volkswagen"], "default": "toyota",
              "aliases": {"vw": "volkswagen"}},
    "model": {"kind": "text", "max_length": 64, "by_brand": {}, "default": "corolla"},
}
CAR = {"horsepower": 110, "fueltype": "gas", "brand": "toyota", "model": "corolla"}


class FakeCatalog:
    """Two models with fixed prices and a four-feature schema."""

    def __init__(self) -> None:
        self.offers = {
            "cheap": ModelOffer("cheap", "1", 10, SCHEMA),
            "pricey": ModelOffer("pricey", "3", 40, SCHEMA),
        }

    def offer(self, name: str) -> ModelOffer:
        if name not in self.offers:
            raise UnknownModel(name, sorted(self.offers))
        return self.offers[name]
