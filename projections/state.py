"""Where each projection is: its offset per Kafka partition, its unrepaired faults, its lag.

Offsets are kept per partition, in the same transaction as the rows, because a projector
applies partitions independently: one partition can be far behind while another is current,
and only the one furthest behind says what the read side is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import psycopg
from psycopg.rows import TupleRow

from infra.published import PublishedEvent
from projections.encoding import pg_text
from projections.registry import NAMES

CHANNEL = "carprice_projections"  # NOTIFY after a batch: the user ids whose rows changed


@dataclass(frozen=True)
class PartitionOffset:
    """The last message a projection applied from one partition."""

    projection: str
    partition: int
    kafka_offset: int
    position: int


def save_offsets(conn: psycopg.Connection[TupleRow], events: Iterable[PublishedEvent],
                 names: Iterable[str] = NAMES) -> None:
    """Record, per projection and partition, the last message of this batch (same transaction)."""
    last: dict[tuple[str, int], PublishedEvent] = {}
    for e in events:
        if e.topic is not None and e.partition is not None and e.offset is not None:
            key = (e.topic, e.partition)
            if key not in last or e.offset > (last[key].offset or -1):
                last[key] = e
    rows = [(name, topic, partition, e.offset, e.position)
            for (topic, partition), e in last.items() for name in names]
    if rows:
        # an offset can go down (a topic recreated after broker data loss): the latest wins
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO projection_offsets (projection, topic, partition, kafka_offset, position, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, now()) ON CONFLICT (projection, topic, partition) "
                "DO UPDATE SET kafka_offset = EXCLUDED.kafka_offset, position = EXCLUDED.position, "
                "updated_at = now()", rows)


def offsets(conn: psycopg.Connection[TupleRow], topic: str) -> list[PartitionOffset]:
    """Every projection's offset on every partition of `topic` it has read."""
    rows = conn.execute("SELECT projection, partition, kafka_offset, position FROM projection_offsets "
                        "WHERE topic = %s", (topic,)).fetchall()
    return [PartitionOffset(str(p), int(n), int(o), int(pos)) for p, n, o, pos in rows]


def lag(conn: psycopg.Connection[TupleRow], topic: str, end_offsets: Mapping[int, int],
        unpublished: int) -> dict[str, int]:
    """Events each projection has not applied yet: what the relay has not published, plus, per
    partition, the messages behind the offset the projection applied (a partition it never
    read counts from 0). The partition furthest behind is what readiness sees."""
    known = offsets(conn, topic)
    out: dict[str, int] = {}
    for name in NAMES:
        mine = {o.partition: o.kafka_offset for o in known if o.projection == name}
        behind = sum(max(0, end - (mine[p] + 1 if p in mine else 0)) for p, end in end_offsets.items())
        out[name] = behind + max(0, unpublished)
    return out


def idle_seconds(conn: psycopg.Connection[TupleRow], topic: str) -> dict[str, float | None]:
    """Seconds since each projection last applied a batch from `topic` (None: never)."""
    rows: dict[str, Decimal | None] = dict(conn.execute(
        "SELECT projection, extract(epoch FROM now() - max(updated_at)) FROM projection_offsets "
        "WHERE topic = %s GROUP BY projection", (topic,)).fetchall())
    seconds = {name: rows.get(name) for name in NAMES}
    return {name: None if s is None else float(s) for name, s in seconds.items()}


def stalled(behind: Mapping[str, int], idle: Mapping[str, float | None],
            after: float) -> dict[str, float | None]:
    """The projections with work on the broker (`behind` > 0) that have not advanced for
    `after` seconds, whatever the size of their lag -> seconds idle (None: never advanced)."""
    return {name: idle.get(name) for name, events in behind.items()
            if events > 0 and (idle.get(name) is None or (idle.get(name) or 0.0) >= after)}


def record_fault(conn: psycopg.Connection[TupleRow], projection: str, event: PublishedEvent,
                 error: str) -> int:
    """Note an event a projection could not apply; returns the fault's id."""
    row = conn.execute(
        "INSERT INTO projection_faults (projection, aggregate_id, event_type, position, source, error) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (projection, event.aggregate_id, pg_text(event.type), event.position, event.source,
         pg_text(error[:2000]))).fetchone()
    return int(row[0]) if row else 0


def open_faults(conn: psycopg.Connection[TupleRow]) -> list[tuple[int, str, str]]:
    """(id, projection, aggregate id) of every fault not repaired yet."""
    rows = conn.execute("SELECT id, projection, aggregate_id FROM projection_faults "
                        "WHERE repaired_at IS NULL ORDER BY id").fetchall()
    return [(int(i), str(p), str(a)) for i, p, a in rows]


def fault_counts(conn: psycopg.Connection[TupleRow]) -> dict[str, int]:
    """Unrepaired faults per projection (every projection named, 0 when healthy)."""
    rows: dict[str, int] = dict(conn.execute("SELECT projection, count(*) FROM projection_faults "
                             "WHERE repaired_at IS NULL GROUP BY projection").fetchall())
    return {name: int(rows.get(name, 0)) for name in NAMES}


def mark_repaired(conn: psycopg.Connection[TupleRow], projection: str, aggregate_id: str) -> None:
    """Close every fault of this aggregate in this projection."""
    conn.execute("UPDATE projection_faults SET repaired_at = now() WHERE projection = %s AND "
                 "aggregate_id = %s AND repaired_at IS NULL", (projection, aggregate_id))


def notify(conn: psycopg.Connection[TupleRow], user_ids: Iterable[str]) -> None:
    """Tell listeners (the API) whose rows this transaction changed; delivered at commit."""
    chunk: list[str] = []
    for user in sorted(set(user_ids)):
        chunk.append(user)
        if len(chunk) == 200:  # NOTIFY payloads stay under 8000 bytes
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ",".join(chunk)))
            chunk = []
    if chunk:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, ",".join(chunk)))
