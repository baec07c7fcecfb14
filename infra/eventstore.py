"""The event store's configuration for the eventsourcing library (PostgreSQL, psycopg 3).

Processes never create tables: `carprice migrate` owns the schema. The event store's own
tables, type and insert function are the library's (their DDL is its business, and its
insert function has the lock timeout baked in), so the migration asks the library to
create them (`create_tables`) rather than copying its SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from uuid import UUID

if TYPE_CHECKING:
    import psycopg
    from eventsourcing.persistence import ApplicationRecorder, Recorder, StoredEvent, Subscription
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg.rows import DictRow
    from psycopg_pool import ConnectionPool

APP_NAME = "carprice"  # the library names the tables after it: carprice_events, carprice_snapshots
LOCK_TIMEOUT_SECONDS = "5"


def postgres_env(database_url: str, pool_size: int = 10, create_tables: bool = False) -> dict[str, str]:
    """eventsourcing's POSTGRES_* settings from a postgresql:// URL."""
    url = urlsplit(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {url.scheme!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size * 2),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_PRE_PING": "n",
        "POSTGRES_LOCK_TIMEOUT": LOCK_TIMEOUT_SECONDS,
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        "CREATE_TABLE": "y" if create_tables else "n",
        "APPLICATION_RECORDER_TOPIC": "infra.eventstore:Recorder",
    }


def _recorder_class() -> type[PostgresApplicationRecorder]:
    from eventsourcing.postgres import PostgresApplicationRecorder

    from infra.eventsourcing_compat import insert_unpipelined

    class LargeSaveRecorder(PostgresApplicationRecorder):
        """The library's recorder; a large save (a fleet batch: thousands of events, megabytes
        of parameters in one INSERT) is sent without pipeline mode, where psycopg can wait on
        the server while the server waits for the rest of the query (psycopg#685: seen here at
        5,000 rows, both sides in ClientRead for ever). Same statements, same transaction."""

        PIPELINED_MAX_EVENTS = 1000

        def insert_events(self, stored_events: Sequence[StoredEvent],
                          **kwargs: object) -> Sequence[int] | None:
            if len(stored_events) <= self.PIPELINED_MAX_EVENTS or self.datastore.enable_db_functions:
                inserted: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
                return inserted
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                return insert_unpipelined(self, curs, stored_events, **kwargs)

    return LargeSaveRecorder


def __getattr__(name: str) -> type[PostgresApplicationRecorder]:
    # `Recorder` is resolved by eventsourcing from APPLICATION_RECORDER_TOPIC; built lazily so
    # importing infra.eventstore does not import the library's PostgreSQL module
    if name == "Recorder":
        globals()["Recorder"] = recorder = _recorder_class()
        return recorder
    raise AttributeError(name)


def create_tables(database_url: str) -> None:
    """The event store's tables (events, snapshots) as the library defines them; idempotent."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    factory = InfrastructureFactory.construct(
        Environment(APP_NAME, postgres_env(database_url, 2, create_tables=True)))
    try:
        factory.application_recorder()
        factory.aggregate_recorder("snapshots")
    finally:
        factory.close()


def pools(recorder: Recorder) -> list[ConnectionPool[psycopg.Connection[DictRow]]]:
    """The connection pools behind a recorder (PostgresDatastore.pool, a psycopg_pool pool);
    none for other recorders."""
    from eventsourcing.postgres import PostgresRecorder

    return [recorder.datastore.pool] if isinstance(recorder, PostgresRecorder) else []


def subscribe(recorder: ApplicationRecorder, gt: int | None = None,
              ) -> Subscription[ApplicationRecorder]:
    """recorder.subscribe(gt), with a listener that sleeps while nothing is recorded.

    eventsourcing's PostgresSubscription listens with psycopg's notifies(timeout=0.1): ten
    wake-ups a second, about 1 % of a core for an idle relay. This one waits on the
    connection's socket (1 s at a time, to see a stop). Other recorders subscribe as usual.
    """
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresSubscription
    from psycopg.sql import SQL, Identifier

    from infra import listen

    if not isinstance(recorder, PostgresApplicationRecorder):
        return recorder.subscribe(gt=gt)

    class QuietSubscription(PostgresSubscription):
        # the library's _listen (eventsourcing 9.5), with the wait on the socket
        def _listen(self) -> None:
            try:
                with self._recorder.datastore.get_connection() as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                    while not self._has_been_stopped and not self._thread_error:
                        if listen.wait(conn, 1.0):
                            self._has_been_notified.set()
            except BaseException as e:  # noqa: BLE001 - handed to the iterator, as the library does
                if self._thread_error is None:
                    self._thread_error = e
                self.stop()

    return QuietSubscription(recorder=recorder, gt=gt)



def stored_events(recorder: Recorder, aggregate_id: UUID,
                  versions: Iterable[int]) -> dict[int, tuple[int, str, bytes]]:
    """Some versions of an aggregate as stored: version -> (position, topic, state bytes). The
    position is the notification id, what published events carry as `position`."""
    from eventsourcing.popo import POPOApplicationRecorder
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    from infra.eventsourcing_compat import popo_events

    wanted = sorted({int(v) for v in versions})
    if isinstance(recorder, PostgresApplicationRecorder):
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            rows = cur.execute(SQL(
                "SELECT originator_version, notification_id, topic, state FROM {}.{} "
                "WHERE originator_id = %s AND originator_version = ANY(%s)").format(
                Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)),
                (aggregate_id, wanted)).fetchall()
        return {int(v): (int(n), str(t), bytes(s)) for v, n, t, s in rows}
    if isinstance(recorder, POPOApplicationRecorder):  # in memory: the position is index + 1
        index, events = popo_events(recorder, aggregate_id)
        found = {v: index[v] for v in wanted if v in index}
        return {v: (i + 1, events[i].topic, bytes(events[i].state)) for v, i in found.items()}
    raise TypeError(f"no positions for a {type(recorder).__name__}")


def stored_after(recorder: Recorder, after: dict[UUID, int]) -> dict[UUID, list[StoredEvent]] | None:
    """The stored events of many aggregates in one query: id -> its events with a version
    above `after[id]` (0 for all), oldest first; ids with none are absent. None where the
    recorder is not PostgreSQL (callers then read aggregate by aggregate)."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresAggregateRecorder
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    if not isinstance(recorder, PostgresAggregateRecorder):
        return None
    out: dict[UUID, list[StoredEvent]] = {}
    if not after:
        return out
    ids = list(after)
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, v) "
            "JOIN {}.{} e ON e.originator_id = w.id AND e.originator_version > w.v "
            "ORDER BY e.originator_id, e.originator_version").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)),
            (ids, [after[i] for i in ids])).fetchall()
    for oid, version, topic, state in rows:
        out.setdefault(oid, []).append(StoredEvent(oid, int(version), str(topic), bytes(state)))
    return out


def latest_stored(recorder: Recorder, ids: Iterable[UUID]) -> dict[UUID, StoredEvent] | None:
    """The newest stored record of each aggregate (of a snapshot store: its latest snapshot),
    in one query; None where the recorder is not PostgreSQL."""
    from eventsourcing.persistence import StoredEvent
    from eventsourcing.postgres import PostgresAggregateRecorder
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    if not isinstance(recorder, PostgresAggregateRecorder):
        return None
    wanted = list(ids)
    if not wanted:
        return {}
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(SQL(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state "
            "FROM {}.{} WHERE originator_id = ANY(%s) "
            "ORDER BY originator_id, originator_version DESC").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)),
            (wanted,)).fetchall()
    return {oid: StoredEvent(oid, int(v), str(t), bytes(s)) for oid, v, t, s in rows}
