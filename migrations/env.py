"""alembic's entry: runs the migrations on one connection, one transaction per migration,
holding an advisory lock so that two `carprice migrate` started together take turns."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

MIGRATE_LOCK = 7364624


def _sqlalchemy_url(database_url: str) -> str:
    scheme, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def _record(ctx: MigrationContext, step: MigrationInfo, heads: Collection[str],
            run_args: Mapping[str, object]) -> None:
    """Each migration applied, in its own transaction: its revision, the one before, and
    whether processes written for the one before may run on it (the module's `compatible`:
    expand-only). infra.schema reads it to let older replicas run on a newer schema."""
    conn, script = ctx.connection, step.up_revision
    if conn is None or script is None:  # offline (--sql) runs record nothing
        return
    if not step.is_upgrade:
        conn.execute(text("DELETE FROM schema_revisions WHERE revision = :r"),
                     {"r": step.up_revision_id})
        return
    conn.execute(text(
        "CREATE TABLE IF NOT EXISTS schema_revisions (revision text PRIMARY KEY, down_revision "
        "text, compatible boolean NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"))
    conn.execute(text(
        "INSERT INTO schema_revisions (revision, down_revision, compatible) VALUES (:r, :d, :c) "
        "ON CONFLICT (revision) DO UPDATE SET down_revision = :d, compatible = :c"),
        {"r": script.revision, "d": script.down_revision,
         "c": bool(getattr(getattr(script, "module", None), "compatible", False))})


def run() -> None:
    database_url = context.config.attributes["database_url"]
    engine = create_engine(_sqlalchemy_url(database_url), poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None,
                              transaction_per_migration=True, on_version_apply=_record)
            with context.begin_transaction():
                context.run_migrations(database_url=database_url)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK})
            connection.commit()
    engine.dispose()


run()
