"""The projections, by name: the one place their names come from."""

from __future__ import annotations

from projections.balances import BALANCES
from projections.jobs import JOBS
from projections.projection import Projection

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (BALANCES, JOBS)}
NAMES: tuple[str, ...] = tuple(PROJECTIONS)
