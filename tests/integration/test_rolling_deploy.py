"""Rolling deploys: a process runs on the schema it was written for, and on a newer one when
every migration since only expands; it refuses an older schema and one that contracts."""

from __future__ import annotations

import psycopg
import pytest

import migrations
from infra.schema import REQUIRED_REVISION, SchemaOutOfDate, check_url
from tests.conftest import Stack

pytestmark = [pytest.mark.postgres]


def _at(url: str, revision: str, *newer: tuple[str, str, bool]) -> None:
    """The database as a later `carprice migrate` would leave it: `newer` migrations
    (revision, the one before, compatible) recorded, the schema at `revision`."""
    with psycopg.connect(url, autocommit=True) as conn:
        for rev, down, compatible in newer:
            conn.execute("INSERT INTO schema_revisions (revision, down_revision, compatible) "
                         "VALUES (%s, %s, %s)", (rev, down, compatible))
        conn.execute("UPDATE alembic_version SET version_num = %s", (revision,))


def test_an_older_process_runs_on_expand_only_migrations_and_refuses_a_contracting_one(
        stack: Stack) -> None:
    with migrations.scratch_database(stack.database_url, "rolling") as url:
        assert check_url(url) == REQUIRED_REVISION
        with psycopg.connect(url, autocommit=True) as conn:  # `carprice migrate` recorded each
            recorded = dict(conn.execute(
                "SELECT revision, compatible FROM schema_revisions").fetchall())
        assert [rev for rev, _ in migrations.history()] == sorted(recorded)
        # the next release's first migration adds a table: this release keeps running
        _at(url, "9001", ("9001", REQUIRED_REVISION, True))
        assert check_url(url) == "9001"
        # and then one that drops a column this release reads: it stops, saying which
        _at(url, "9002", ("9002", "9001", False))
        with pytest.raises(SchemaOutOfDate, match="9002"):
            check_url(url)
        # a schema older than this release's: migrate first
        _at(url, "0005")
        with pytest.raises(SchemaOutOfDate, match="carprice migrate"):
            check_url(url)
