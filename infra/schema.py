"""The schema version a process needs, checked at its start (`carprice migrate` moves it)."""

from __future__ import annotations

from typing import Any

import psycopg

# The newest migration this code was written for (a unit test keeps it equal to the head).
REQUIRED_REVISION = "0006"


class SchemaOutOfDate(SystemExit):
    """The database's schema is not the one this code needs; the process stops with why."""


def check(conn: psycopg.Connection[Any]) -> None:
    """Stop with a clear message unless the database is at REQUIRED_REVISION."""
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if exists and exists[0] \
        else None
    at = row[0] if row else None
    if at != REQUIRED_REVISION:
        raise SchemaOutOfDate(
            f"the database schema is at {at or 'no revision (never migrated)'}, this carprice "
            f"needs {REQUIRED_REVISION}: run `carprice migrate`")


def check_url(database_url: str) -> None:
    """check() on a connection of its own."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        check(conn)
