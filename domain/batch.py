"""A fleet batch: many cars priced with one model, charged together, each row its own job.

The batch records what was submitted; each row is a PredictionJob (with `batch_id` and
`batch_row`), so it runs through the same pipeline and fails, expires and is refunded
alone. The batch's progress is read from its rows.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import BATCH_SUBMITTED

MAX_ROWS = 10_000


class PriceBatch(Aggregate):
    """Rows of cars submitted together."""

    TOPIC = "carprice.batch"

    class Created(Aggregate.Created):
        TOPIC = "batch.created.v0"  # the library's generic creation event; never triggered

    @staticmethod
    def create_id(batch_id: UUID) -> UUID:
        return batch_id

    @event("Submitted", topic=BATCH_SUBMITTED)
    def __init__(self, batch_id: UUID, user_id: UUID, model_name: str, model_version: str,
                 price: int, rows: int, source: str) -> None:
        # price: per row (rows x price were charged, one charge per row's job)
        # source: "csv" or "json"
        self.user_id = user_id
        self.model_name = model_name
        self.model_version = model_version
        self.price = price
        self.rows = rows
        self.source = source
