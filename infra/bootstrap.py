"""Builds the objects a process needs, once, in its entrypoint (the composition root)."""

from __future__ import annotations

import time

import psycopg
from eventsourcing.persistence import PersistenceError

from commands.app import CarpriceApp
from infra.eventstore import postgres_env
from infra.settings import Settings
from model_registry.catalog import RegistryCatalog
from model_registry.store import Registry


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one of this home."""
    if settings.database_url:
        return settings.database_url
    from infra import embedded_pg
    from infra.proc import ServiceError

    port = embedded_pg.running_port(settings.home)
    if port is None:
        raise ServiceError("PostgreSQL is not running: run `carprice services up` (or make up)")
    return embedded_pg.url(port)


def build_app(settings: Settings, registry: Registry | None = None,
              url: str | None = None) -> CarpriceApp:
    """The write-side Application on PostgreSQL, with the registry as its catalogue."""
    registry = registry or Registry(settings.registry_dir)
    env = postgres_env(url or database_url(settings), settings.db_pool_size)
    # Cached aggregates are fast-forwarded from the store on every get, so they are
    # never stale, even with several processes writing.
    env["AGGREGATE_CACHE_MAXSIZE"] = "10000"
    def make() -> CarpriceApp:
        return CarpriceApp(RegistryCatalog(registry), env=env, group_commit=settings.group_commit,
                           deadline_seconds=settings.job_deadline_seconds,
                           commit_timeout=settings.commit_timeout_seconds)

    for attempt in range(5):
        try:
            return make()
        except (psycopg.Error, PersistenceError):
            # Processes starting together race on CREATE TABLE IF NOT EXISTS in the
            # catalogue ("tuple concurrently updated"); the loser simply tries again.
            time.sleep(0.2 * (attempt + 1))
    return make()
