"""The index of dead letters: one row per message a consumer sent to the dead-letter topic.

The topic holds the message itself; this table says which consumer gave up on it, why,
where it came from and where it is in the dead-letter topic, so that `carprice dlq` can list,
show and replay them and the metrics can count them by consumer and reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import psycopg
from psycopg.rows import TupleRow, class_row

from infra.pg import Pool

if TYPE_CHECKING:
    from infra.published import PublishedEvent


class Place(Protocol):
    """Where a message was read: a polled record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


@dataclass
class DeadLetter:
    """One row of the index."""

    id: int
    consumer: str
    reason: str
    exception: str
    error: str
    attempts: int
    source_topic: str
    source_partition: int
    source_offset: int
    dlq_topic: str
    dlq_partition: int | None
    dlq_offset: int | None
    event_type: str | None
    aggregate_id: str | None
    created_at: datetime
    replayed_at: datetime | None

    @property
    def source(self) -> str:
        """`topic[partition]@offset` of the original message."""
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"


class PgDeadLetterLog:
    """Writes the index rows (the BatchLoop's DeadLetterLog)."""

    def __init__(self, pool: Pool, dlq_topic: str) -> None:
        self.pool = pool
        self.dlq_topic = dlq_topic

    def record(self, consumer: str, reason: str, record: Place, error: BaseException, attempts: int,
               event: PublishedEvent | None, dlq_place: tuple[int, int] | None) -> None:
        """Index one dead letter."""
        partition, offset = dlq_place if dlq_place else (None, None)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO dead_letters (consumer, reason, exception, error, attempts, source_topic, "
                "source_partition, source_offset, dlq_topic, dlq_partition, dlq_offset, event_type, "
                "aggregate_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (consumer, reason, type(error).__name__, _clean(str(error))[:2000], attempts,
                 record.topic, record.partition, record.offset, self.dlq_topic, partition, offset,
                 _clean(event.type) if event is not None else None,
                 event.aggregate_id if event is not None else None))


def listing(conn: psycopg.Connection[TupleRow], consumer: str | None = None,
            limit: int = 200) -> list[DeadLetter]:
    """The newest dead letters first (of one consumer, when given)."""
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        if consumer:
            return cur.execute("SELECT * FROM dead_letters WHERE consumer = %s ORDER BY id DESC "
                               "LIMIT %s", (consumer, limit)).fetchall()
        return cur.execute("SELECT * FROM dead_letters ORDER BY id DESC LIMIT %s", (limit,)).fetchall()


def one(conn: psycopg.Connection[TupleRow], letter_id: int) -> DeadLetter | None:
    """One dead letter by id."""
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        return cur.execute("SELECT * FROM dead_letters WHERE id = %s", (letter_id,)).fetchone()


def mark_replayed(conn: psycopg.Connection[TupleRow], letter_id: int) -> None:
    """Note that a dead letter was sent back to its source topic."""
    conn.execute("UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (letter_id,))


def counts(conn: psycopg.Connection[TupleRow]) -> list[tuple[str, str, int]]:
    """(consumer, reason, how many) for the metrics."""
    rows = conn.execute("SELECT consumer, reason, count(*) FROM dead_letters "
                        "GROUP BY consumer, reason").fetchall()
    return [(str(c), str(r), int(n)) for c, r, n in rows]
