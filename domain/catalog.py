"""What the write side needs to know of the models: a port, filled by model_registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelOffer:
    """A model version as sold: its price and the input it accepts."""

    name: str
    version: str
    price: int
    input_schema: Mapping[str, Mapping[str, Any]]
    explain_price: int = 0  # the surcharge of an explanation; 0: this version cannot explain


class ModelCatalog(Protocol):
    """Finds the offer of a model by name: the version serving paid jobs, its champion."""

    def offer(self, name: str) -> ModelOffer:
        """The champion of `name`; raises UnknownModel."""
        ...

    def follow(self, promoted: Callable[[str], str | None]) -> Callable[[], None]:
        """Take the promoted champion of a model (None: never promoted) from `promoted`; the
        function returned stops it (the store behind `promoted` is closing)."""
        ...


@dataclass(frozen=True)
class ModelFingerprint:
    """What proves which model a job used: its card's and its artifact's sha256."""

    name: str
    version: str
    card_sha256: str
    artifact_sha256: str  # as the card records it (checked whenever the model is loaded)
    artifact_ok: bool | None = None  # the file on disk hashed again: equal to the card's
