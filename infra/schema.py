"""The schema version a process needs, checked at its start (`carprice migrate` moves it).

A process runs on the schema it was written for (REQUIRED_REVISION) and on a newer one when
every migration since is an expand-only one (`compatible = True` in its module: it adds
tables, columns with defaults or indexes, and changes nothing an older process reads or
writes). `carprice migrate` records each migration it applies, and whether it is compatible,
in `schema_revisions`. So during a rolling deploy the new schema goes in first and the older
replicas keep running beside the newer ones; a migration that contracts (drops or renames
what older code uses) waits for a later release, once no older process is left
(docs/operations.md, "Deploying a migration").
"""

from __future__ import annotations

import logging

import psycopg
from psycopg.rows import TupleRow

# The newest migration this code was written for (a unit test keeps it equal to the head).
REQUIRED_REVISION = "0009"

log = logging.getLogger("carprice")


class SchemaOutOfDate(SystemExit):
    """The database's schema is not one this code can run on; the process stops with why."""


def check(conn: psycopg.Connection[TupleRow]) -> str:
    """The database's revision, if this code can run on it; SchemaOutOfDate with why not."""
    at = _revision(conn)
    if at == REQUIRED_REVISION:
        return at
    newer = _since_required(conn, at) if at else None
    if at is None or newer is None:
        raise SchemaOutOfDate(
            f"the database schema is at {at or 'no revision (never migrated)'}, this carprice "
            f"needs {REQUIRED_REVISION}: run `carprice migrate`")
    contracting = [rev for rev, compatible in newer if not compatible]
    if contracting:
        raise SchemaOutOfDate(
            f"the database schema is at {at}, newer than this carprice's {REQUIRED_REVISION}, and "
            f"migration {', '.join(contracting)} changes what this version uses: run the carprice "
            "release that ships it")
    log.info("schema at %s, newer than this carprice's %s; every migration since only adds "
             "(%s): running on it", at, REQUIRED_REVISION, ", ".join(rev for rev, _ in newer))
    return at


def _revision(conn: psycopg.Connection[TupleRow]) -> str | None:
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _since_required(conn: psycopg.Connection[TupleRow], at: str) -> list[tuple[str, bool]] | None:
    """(revision, compatible) of each migration from REQUIRED_REVISION (excluded) up to `at`,
    newest first; None when `at` does not descend from it (an older schema, or unknown)."""
    exists = conn.execute("SELECT to_regclass('schema_revisions') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return None
    chain = {rev: (down, compatible) for rev, down, compatible in conn.execute(
        "SELECT revision, down_revision, compatible FROM schema_revisions").fetchall()}
    path: list[tuple[str, bool]] = []
    rev: str | None = at
    while rev is not None and rev != REQUIRED_REVISION and rev in chain and len(path) <= len(chain):
        down, compatible = chain[rev]
        path.append((rev, bool(compatible)))
        rev = down
    return path if rev == REQUIRED_REVISION else None


def check_url(database_url: str) -> str:
    """check() on a connection of its own."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return check(conn)
