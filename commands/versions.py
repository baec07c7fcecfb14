"""The store's versions for async readers: one primary-key lookup, no aggregate loaded."""

from __future__ import annotations

from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow


async def aggregate_version(conn: psycopg.AsyncConnection[TupleRow], events_table: str,
                            aggregate_id: UUID) -> int:
    """The current version of an aggregate (0: it does not exist); see CarpriceApp.events_table."""
    cur = await conn.execute(sql.SQL(
        "SELECT originator_version FROM {} WHERE originator_id = %s "
        "ORDER BY originator_version DESC LIMIT 1").format(sql.Identifier(events_table)),
        (aggregate_id,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0
