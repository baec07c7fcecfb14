"""The registry as the write side's model catalogue."""

from __future__ import annotations

from collections.abc import Callable

from domain.catalog import ModelOffer
from domain.errors import UnknownModel
from model_registry.store import Registry, RegistryError


class RegistryCatalog:
    """Offers the champion of each model (the registry's rule, with promotions looked up)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def offer(self, name: str) -> ModelOffer:
        """The champion of `name`, with its model's price and its input schema."""
        try:
            card = self.registry.card(name)
        except RegistryError:
            raise UnknownModel(name, self.registry.names()) from None
        return ModelOffer(card.name, card.version, self.registry.price(card.name), card.input_schema,
                          card.explain_price)

    def follow(self, promoted: Callable[[str], str | None]) -> Callable[[], None]:
        """Look promoted champions up with `promoted` (the write side's release histories)."""
        return self.registry.follow(promoted)
