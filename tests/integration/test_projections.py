"""The projector's apply step on real PostgreSQL (a schema per test), fed events from the store.

No broker: events are read from the event store and handed to the ProjectionHandler as the
consumer loop would, with the Kafka partition and offset they would have come with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from commands.application import CarpriceApp, Outcome
from consumers.projector import ProjectionHandler
from domain.ids import wallet_id_for
from domain.job import PredictionJob
from infra.published import PublishedEvent
from projections.state import fault_counts, lag, open_faults, save_offsets

pytestmark = pytest.mark.postgres
TOPIC = "proj.events"


@pytest.fixture
def pool(read_db: str) -> Iterator[ConnectionPool[Any]]:
    with ConnectionPool(read_db, min_size=1, max_size=2, kwargs={"autocommit": True}) as p:
        yield p


def _delivered(app: CarpriceApp, *aggregates: UUID, partition: int = 0,
               first_offset: int = 0) -> list[PublishedEvent]:
    """The aggregates' events in log order, as the consumer would get them from one partition."""
    events = sorted((e for a in aggregates for e in app.published_history(a)),
                    key=lambda e: (e.timestamp, e.aggregate_version))
    positions = {(n.originator_id, n.originator_version): n.id for n in
                 app.recorder.select_notifications(start=1, limit=10_000_000)
                 if n.originator_id in aggregates}
    return [dataclasses.replace(e, position=positions[(UUID(e.aggregate_id), e.aggregate_version)],
                                topic=TOPIC, partition=partition, offset=first_offset + i)
            for i, e in enumerate(events)]


def _row(url: str, query: str, *params: Any) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchone()  # type: ignore[arg-type]


def _user(app: CarpriceApp, unique: str, credits: int) -> UUID:
    user = app.sign_up("Proj", f"proj-{unique}@example.com", "password-123").user_id
    app.deposit(user, credits)
    return user


def test_an_event_holding_nul_is_projected_and_the_users_rows_go_on(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any],
    registry  # type: ignore[no-untyped-def]
) -> None:
    # Recorded before text was checked at the door, as an older carprice did: the store holds it.
    card = registry.card("linear_regression")
    user = _user(app, unique, 100)
    job = uuid4()
    wallet = app.repository.get(wallet_id_for(user))
    # an older carprice charged at submit (no hold)
    wallet._charged(user_id=user, job_id=job, amount=card.price, model_name=card.name,
                    model_version=card.version)
    app.save(PredictionJob(job_id=job, user_id=user, model_name=card.name, model_version=card.version,
                           features={**car, "model": "giulia\x00"}, price=card.price), wallet)
    assert app.job(job).features["model"] == "giulia\x00"
    app.complete_prediction(job, 12345.0, card.version)
    app.deposit(user, 7)
    handler = ProjectionHandler(pool, app.published_history)
    handler(_delivered(app, wallet_id_for(user), job))
    features, status = _row(read_db, "SELECT features, status FROM prediction_history WHERE job_id = %s", job)
    assert features["model"] == "giulia\ufffd" and status == "finished"
    assert _row(read_db, "SELECT balance FROM balances WHERE user_id = %s", user) == (107 - card.price,)


def test_a_version_gap_is_repaired_from_the_store(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str, car: dict[str, Any]
) -> None:
    user = _user(app, unique, 10)
    for amount in (20, 30):
        app.deposit(user, amount)
    job = app.request_prediction(user, "linear_regression", car).job_id
    app.complete_prediction(job, 9999.0, "1")
    handler = ProjectionHandler(pool, app.published_history)
    events = _delivered(app, wallet_id_for(user), job)
    # Only the last wallet event and the job's completion arrive: everything before was lost.
    last_wallet = [e for e in events if e.aggregate_id == str(wallet_id_for(user))][-1]
    completed = [e for e in events if e.aggregate_id == str(job)][-1]
    handler([last_wallet, completed])
    wallet = app.balance(user)
    assert _row(read_db, "SELECT balance, version FROM balances WHERE user_id = %s", user) == (
        wallet.balance, wallet.version)
    assert _row(read_db, "SELECT status, result, version FROM prediction_history WHERE job_id = %s",
                job) == ("finished", 9999.0, 2)
    handler(events)  # the whole stream afterwards: every event is a duplicate now
    assert _row(read_db, "SELECT balance, version FROM balances WHERE user_id = %s", user) == (
        wallet.balance, wallet.version)


def test_a_dead_lettered_event_is_noted_and_its_rows_repaired_from_the_store(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str
) -> None:
    user = _user(app, unique, 40)
    handler = ProjectionHandler(pool, app.published_history)
    events = _delivered(app, wallet_id_for(user))
    handler(events[:1])  # opened; the deposit is the message that could not be applied
    handler.on_dead_letter(events[1], ValueError("cannot apply"))
    assert _row(read_db, "SELECT balance FROM balances WHERE user_id = %s", user) == (40,)
    assert fault_counts(_conn(read_db)) == {"balances": 0, "jobs": 0}
    assert _row(read_db, "SELECT count(*) FROM projection_faults WHERE aggregate_id = %s AND "
                "repaired_at IS NOT NULL", str(wallet_id_for(user))) == (1,)


def test_an_unrepairable_fault_keeps_the_projection_unhealthy_until_it_is_repaired(
    app: CarpriceApp, pool: ConnectionPool[Any], read_db: str, unique: str
) -> None:
    user = _user(app, unique, 25)
    store_down = True

    def history(aggregate: str) -> list[PublishedEvent]:
        if store_down:
            raise psycopg.OperationalError("the event store is unreachable")
        return app.published_history(aggregate)

    clock = [0.0]
    handler = ProjectionHandler(pool, history, clock=lambda: clock[0])
    events = _delivered(app, wallet_id_for(user))
    handler.on_dead_letter(events[1], ValueError("cannot apply"))
    with _conn(read_db) as conn:
        assert fault_counts(conn)["balances"] == 1
        assert [f[1:] for f in open_faults(conn)] == [("balances", str(wallet_id_for(user)))]
    store_down = False
    handler.tick()  # too soon: retried only every RETRY_FAULTS_SECONDS
    assert fault_counts(_conn(read_db))["balances"] == 1
    clock[0] = 3600.0
    handler.tick()
    assert fault_counts(_conn(read_db))["balances"] == 0
    assert _row(read_db, "SELECT balance FROM balances WHERE user_id = %s", user) == (25,)


def test_lag_counts_the_partition_furthest_behind(app: CarpriceApp, read_db: str, unique: str) -> None:
    user = _user(app, unique, 5)
    events = _delivered(app, wallet_id_for(user))
    with _conn(read_db) as conn:
        on_0 = [dataclasses.replace(e, partition=0, offset=100 + i) for i, e in enumerate(events)]
        on_1 = [dataclasses.replace(events[0], partition=1, offset=3)]
        save_offsets(conn, on_0 + on_1)
        # p0 is current (end 102 = offset 101 + 1); p1 has 500 messages behind offset 3
        assert lag(conn, TOPIC, {0: 100 + len(events), 1: 504, 2: 0}, 0) == {"balances": 500, "jobs": 500}
        assert lag(conn, TOPIC, {0: 100 + len(events), 1: 4, 2: 7}, 2) == {"balances": 9, "jobs": 9}


def test_a_projection_with_work_waiting_that_does_not_advance_is_stalled_whatever_its_lag(
        app: CarpriceApp, read_db: str, unique: str) -> None:
    from projections.state import idle_seconds, stalled

    user = _user(app, unique, 5)
    events = _delivered(app, wallet_id_for(user))
    with _conn(read_db) as conn:
        assert idle_seconds(conn, TOPIC) == {"balances": None, "jobs": None}
        save_offsets(conn, [dataclasses.replace(e, partition=0, offset=i) for i, e in enumerate(events)])
        ends = {0: len(events) + 3}  # 3 messages waiting: a small lag
        fresh = idle_seconds(conn, TOPIC)
        assert all(v is not None and v < 5 for v in fresh.values())
        assert stalled(lag(conn, TOPIC, ends, 0), fresh, after=10) == {}  # it just advanced
        conn.execute("UPDATE projection_offsets SET updated_at = now() - interval '30 seconds' "
                     "WHERE projection = 'jobs'")
        old = idle_seconds(conn, TOPIC)
        assert set(stalled(lag(conn, TOPIC, ends, 0), old, after=10)) == {"jobs"}
        # nothing waiting: idle is not stalled
        assert stalled(lag(conn, TOPIC, {0: len(events)}, 0), old, after=10) == {}


def _conn(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


class _Counting:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.statements = conn, 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.statements += 1
        return self.conn.execute(*args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return self.conn.cursor(*args, **kwargs)


def test_a_job_is_projected_in_one_statement_per_event_and_a_redelivery_changes_nothing(
    app: CarpriceApp, read_db: str, unique: str, car: dict[str, Any]
) -> None:
    from projections.apply import apply_events

    user = _user(app, unique, 100)
    job = app.request_prediction(user, "linear_regression", car).job_id
    interval = {"low": 11000.0, "high": 13000.0, "level": 0.8}
    app.record_outcome(Outcome(job, 12345.5, "1", interval=interval))
    requested, completed = _delivered(app, job)
    with psycopg.connect(read_db) as raw:
        conn = _Counting(raw)
        assert apply_events(conn, [requested], names=["jobs"]).applied == 1  # type: ignore[arg-type]
        assert conn.statements == 1
        assert raw.execute("SELECT status FROM running_jobs WHERE job_id = %s", (job,)).fetchone() == (
            "queued",)
        assert apply_events(conn, [completed], names=["jobs"]).applied == 1  # type: ignore[arg-type]
        assert conn.statements == 2
        again = apply_events(conn, [requested, completed], names=["jobs"])  # type: ignore[arg-type]
        assert (again.applied, again.duplicates) == (0, 2)
        raw.commit()
    assert _row(read_db, "SELECT count(*) FROM running_jobs WHERE job_id = %s", job) == (0,)
    assert _row(read_db, "SELECT status, result, interval FROM prediction_history WHERE job_id = %s",
                job) == ("finished", 12345.5, interval)
    with psycopg.connect(read_db) as conn:
        updates = conn.execute(
            "SELECT position, status, model_name, price, result, finished_at IS NOT NULL, interval "
            "FROM job_updates WHERE job_id = %s ORDER BY position", (job,)).fetchall()
    price = app.job(job).price
    assert updates == [
        (requested.position, "queued", "linear_regression", price, None, False, None),
        (completed.position, "finished", "linear_regression", price, 12345.5, True, interval)]
