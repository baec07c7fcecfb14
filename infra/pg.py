"""PostgreSQL connections and pools, built from the settings of a process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from eventsourcing import persistence as es
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from psycopg_pool.abc import CT

from infra.settings import Settings

# a pool of autocommit connections whose rows are tuples
Pool = ConnectionPool[psycopg.Connection[TupleRow]]
AsyncPool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

# A database that is down or restarting (psycopg's own errors, and the event store's wrapping of
# them): the processes that follow the store connect again instead of exiting.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, es.OperationalError, es.InterfaceError)


log = logging.getLogger("carprice.pg")

# sqlstates of a session the server ended: admin shutdown, crash shutdown, cannot connect now
_SERVER_ENDED = ("57P01", "57P02", "57P03")


def database_unreachable(exc: BaseException) -> bool:
    """The failure is the connection's (the server is down, restarting or out of reach, or the
    pool could not get a session in time), not a statement's: a lock or statement timeout, or
    a constraint, is not. Follows the event store's wrapping of psycopg's errors."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, psycopg.Error):
            state = seen.sqlstate
            return isinstance(seen, psycopg.OperationalError | psycopg.InterfaceError) and (
                state is None or state.startswith("08") or state in _SERVER_ENDED)
        seen = seen.__cause__ or seen.__context__
    return isinstance(exc, es.InterfaceError)


def reconnecting(name: str, stopping: threading.Event, run: Callable[[], None],
                 recover: Callable[[], None] = lambda: None) -> None:
    """Run `run` (a process's connect-lead-work cycle) until it returns or stop is asked;
    when the database goes away (a restart, a failover), log it and run it again a second
    later, in-process: its session, and any advisory lock with it, are gone anyway, and
    `recover` drops the pooled sessions that went with them (see discard_broken)."""
    while not stopping.is_set():
        try:
            run()
            return
        except DATABASE_DOWN as exc:
            log.warning("%s: the database is unavailable (%s: %s); connecting again in 1 s", name,
                        type(exc).__name__, str(exc)[:200])
            stopping.wait(1.0)
            recover()


def discard_broken(*pools: ConnectionPool[CT]) -> None:
    """After an outage, drop every pooled connection the server ended (psycopg_pool's check():
    one empty query per idle connection; the pool opens new ones in the background). Without
    it each retry takes the next dead connection: ten of them, with backoff, kept an inference
    consumer from recording anything for 25 s after a 2 s database restart (bench chaos)."""
    for each in pools:
        try:
            each.check()
        except Exception as exc:  # noqa: BLE001 - the retry that follows tells what is wrong
            log.debug("checking a pool's connections failed: %s", exc)


class NoDatabase(SystemExit):
    """No database to talk to; the process stops with why."""


def database_url(settings: Settings) -> str:
    """The database of these settings (DATABASE_URL; the dev stack sets it for what it starts)."""
    if not settings.database_url:
        raise NoDatabase("DATABASE_URL is not set: point it at PostgreSQL (or run `carprice up` / "
                         "`carprice services up`, whose commands set it)")
    return settings.database_url


def pool(settings: Settings, min_size: int = 1, max_size: int | None = None) -> Pool:
    """A pool of autocommit connections (open; the caller closes it)."""
    return ConnectionPool(database_url(settings), min_size=min_size,
                          max_size=max_size or settings.db_pool_size, kwargs={"autocommit": True},
                          open=True)


def async_pool(settings: Settings, min_size: int = 2) -> AsyncPool:
    """An async pool of autocommit connections, not open yet (open it in the event loop)."""
    return AsyncConnectionPool(database_url(settings), min_size=min_size,
                               max_size=settings.db_pool_size, kwargs={"autocommit": True},
                               open=False)
