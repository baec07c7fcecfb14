"""The shadow_prices table: what each challenger would have asked for a share of the paid jobs.

Written by inference after the paid outcome is saved (consumers/shadow.py), read by the Models
page's comparison (projections/queries.challengers). Not events: a shadow price bills no one,
no user sees it, and losing one to a crash loses nothing but a sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from infra.pg import Pool


@dataclass(frozen=True)
class ShadowPrice:
    """A challenger's price (or why it could not price) for a job its champion priced."""

    job_id: UUID
    model_name: str
    version: str  # the challenger
    champion_version: str  # the version that priced (and billed) the job
    champion_price: float
    price: float | None
    low: float | None = None
    high: float | None = None
    error: str | None = None


class ShadowPrices(Protocol):
    """Where shadow prices are kept."""

    def save(self, rows: list[ShadowPrice]) -> None:
        """Keep `rows`; a job already shadowed by that version keeps its first price."""
        ...


class PgShadowPrices:
    """The shadow_prices table (migration 0009)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def save(self, rows: list[ShadowPrice]) -> None:
        """Insert `rows` in one round trip; a redelivered job's rows are already there."""
        if not rows:
            return
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO shadow_prices (job_id, model_name, version, champion_version, "
                "champion_price, price, low, high, error) SELECT * FROM unnest(%s::uuid[], %s::text[], "
                "%s::text[], %s::text[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], "
                "%s::text[]) ON CONFLICT DO NOTHING",
                ([r.job_id for r in rows], [r.model_name for r in rows], [r.version for r in rows],
                 [r.champion_version for r in rows], [r.champion_price for r in rows],
                 [r.price for r in rows], [r.low for r in rows], [r.high for r in rows],
                 [r.error for r in rows]))
