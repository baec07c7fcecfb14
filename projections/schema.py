"""Copies of the read tables: a rebuild's shadow tables, and a test's schema of its own.

The live tables belong to the migrations. A copy is made `LIKE` them (columns, defaults,
constraints, indexes), so it can never drift from what the migrations made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from projections.registry import PROJECTIONS

# the projector's own bookkeeping and the push tables it writes, copied along with the read
# tables into a test's schema
STATE_TABLES = ("projection_offsets", "projection_faults", "job_updates", "webhook_secrets", "webhooks",
                "webhook_deliveries")


def read_tables() -> tuple[str, ...]:
    """Every table the projections write."""
    return tuple(t for p in PROJECTIONS.values() for t in p.tables)


def copy_tables(conn: psycopg.Connection[TupleRow], tables: Iterable[str], source_schema: str | None = None,
                suffix: str = "") -> None:
    """CREATE TABLE <t><suffix> (LIKE <source_schema>.<t> INCLUDING ALL) for each table."""
    for t in tables:
        source = sql.Identifier(source_schema, t) if source_schema else sql.Identifier(t)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t + suffix)))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier(t + suffix), source))


def _indexes(conn: psycopg.Connection[TupleRow], table: str) -> dict[str, str]:
    """Index definition without its name and table -> index name, in the current schema."""
    rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND "
                        "schemaname = current_schema()", (table,)).fetchall()
    return {re.sub(r"INDEX \S+ ON \S+ ", "INDEX ON ", str(d)): str(n) for n, d in rows}


def swap(conn: psycopg.Connection[TupleRow], tables: Iterable[str], suffix: str) -> None:
    """Replace each live table by its shadow `<t><suffix>`, keeping the live index names
    (the caller holds the tables locked, in its transaction)."""
    for t in tables:
        live, shadow = _indexes(conn, t), _indexes(conn, t + suffix)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(t)))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(t + suffix),
                                                                   sql.Identifier(t)))
        for definition, name in shadow.items():
            if definition in live and live[definition] != name:
                # renames the constraint too when the index backs one (the primary key)
                conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(live[definition])))
