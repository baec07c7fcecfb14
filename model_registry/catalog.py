"""The registry as the write side's model catalogue."""

from __future__ import annotations

from domain.catalog import ModelOffer
from domain.errors import UnknownModel
from model_registry.store import Registry, RegistryError


class RegistryCatalog:
    """Offers the latest registered version of each model."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def offer(self, name: str) -> ModelOffer:
        """The latest version of `name`, with its price and input schema."""
        try:
            card = self.registry.card(name)
        except RegistryError:
            raise UnknownModel(name, self.registry.names()) from None
        return ModelOffer(card.name, card.version, self.registry.price(card.name), card.input_schema,
                          card.explain_price)
