"""Versioned schema migrations (alembic, plain SQL). Only `carprice migrate` runs them.

Every other process checks at start that the database is at the revision it was written for
(infra.schema.REQUIRED_REVISION) and refuses to start otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent


def config(database_url: str) -> Config:
    """An alembic configuration for this database (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database's schema to `revision` (idempotent)."""
    command.upgrade(config(database_url), revision)


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory(str(HERE)).get_current_head()
    assert found is not None  # noqa: S101 - there is always a baseline
    return found


def history() -> list[tuple[str, str]]:
    """(revision, what it does) of every migration, oldest first."""
    script = ScriptDirectory(str(HERE))
    return [(r.revision, (r.doc or "").strip()) for r in reversed(list(script.walk_revisions()))]


@contextmanager
def scratch_database(server_url: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server of `server_url`, migrated, dropped afterwards: a stack on
    it has an event store and read tables of its own (a test's, a benchmark run's), whatever
    the server's other databases hold. With `template` (the name of a migrated database on
    that server, which nobody is connected to), a copy of it: nothing left to migrate."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    url = urlsplit(server_url)._replace(path=f"/{name}").geturl()
    try:
        if template is None:
            upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
