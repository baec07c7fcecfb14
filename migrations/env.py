"""alembic's entry: runs the migrations on one connection, one transaction per migration,
holding an advisory lock so that two `carprice migrate` started together take turns."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

MIGRATE_LOCK = 7364624


def _sqlalchemy_url(database_url: str) -> str:
    scheme, _, rest = database_url.partition("://")
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def run() -> None:
    database_url = context.config.attributes["database_url"]
    engine = create_engine(_sqlalchemy_url(database_url), poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATE_LOCK})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=None,
                              transaction_per_migration=True)
            with context.begin_transaction():
                context.run_migrations(database_url=database_url)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATE_LOCK})
            connection.commit()
    engine.dispose()


run()
