"""The projector: events from Kafka into the read tables, one transaction per batch."""

from __future__ import annotations

from typing import Any

import psycopg

from infra.published import PublishedEvent
from projections.projectors import apply_events


class ProjectionHandler:
    """Applies a batch to every projection in one transaction (rows + positions)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def __call__(self, events: list[PublishedEvent]) -> None:
        with self.conn.transaction():
            apply_events(self.conn, events)
