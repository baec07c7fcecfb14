"""Small PostgreSQL helpers shared by the processes."""

from __future__ import annotations

from typing import Any

import psycopg

DDL_LOCK = 7364623


def run_ddl(conn: psycopg.Connection[Any], *statements: str) -> None:
    """Run CREATE ... IF NOT EXISTS statements one process at a time.

    Concurrent `IF NOT EXISTS` creators still collide in the catalogue ("tuple
    concurrently updated"); a transaction-scoped advisory lock serialises them.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]
