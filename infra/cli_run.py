"""The long-running processes: relay, inference and projector consumers; projection tools."""

from __future__ import annotations

import logging
import signal
from typing import Any

import psycopg
import typer
from rich.console import Console

from infra.settings import Settings

console = Console()
consume_app = typer.Typer(help="Kafka consumer processes.")
projections_app = typer.Typer(help="The read tables.")
log = logging.getLogger("carprice")


def _endpoints(settings: Settings) -> tuple[str, str]:
    from infra.services import endpoints

    return endpoints(settings)


def _topics(settings: Settings, bootstrap: str) -> None:
    from infra.kafka_client import ensure_topics, wait_ready

    wait_ready(bootstrap)
    ensure_topics(bootstrap, [settings.events_topic, settings.dead_letter_topic],
                  settings.kafka_partitions, settings.kafka_replication_factor)


def relay(
    from_position: int = typer.Option(None, "--from-position", min=0, help=(
        "Replay: publish again every event after this position (0: all). Consumers are idempotent.")),
) -> None:
    """Publish the event store to Kafka, in order, at least once (one active relay)."""
    from commands.relay import Relay
    from infra.bootstrap import build_app
    from infra.kafka_client import EndOffsets, producer
    from infra.logs import setup

    setup("relay")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    _topics(settings, bootstrap)
    app = build_app(settings, url=db)
    ends = EndOffsets(bootstrap, settings.events_topic)
    worker = Relay(app, db, settings.events_topic, producer=lambda: producer(bootstrap),
                   end_offsets=ends, prepare=lambda: _topics(settings, bootstrap),
                   rewind_to=from_position, check_every=settings.relay_check_seconds)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    finally:
        ends.close()
        app.close()


def _loop(name: str, group: str, handler: Any, settings: Settings, db: str, bootstrap: str,
          batch_size: int, batch_ms: int) -> None:
    from psycopg_pool import ConnectionPool

    from consumers.loop import BatchLoop, FailurePolicy
    from infra.dead_letters import PgDeadLetterLog, create_table
    from infra.kafka_client import consumer, producer

    policy = FailurePolicy(batch_attempts=settings.consumer_batch_attempts,
                           message_attempts=settings.consumer_message_attempts,
                           backoff_ms=settings.consumer_backoff_ms)
    with psycopg.connect(db, autocommit=True) as conn:
        create_table(conn)
    with ConnectionPool(db, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        loop = BatchLoop(name, consumer(bootstrap, group), settings.events_topic, handler,
                         producer(bootstrap), settings.dead_letter_topic, batch_size, batch_ms,
                         policy=policy,
                         dead_letters=PgDeadLetterLog(pool, settings.dead_letter_topic))
        loop.install_signal_handlers()
        loop.run()


@consume_app.command("inference")
def consume_inference() -> None:
    """Predict requested jobs in micro-batches and record their outcomes (a consumer group)."""
    from consumers.inference import InferenceHandler
    from infra.bootstrap import build_app
    from infra.logs import setup
    from model_registry.store import Registry

    setup("inference")
    from infra import tracing

    tracing.setup("inference")  # spans per job continue the request's trace
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    _topics(settings, bootstrap)
    registry = Registry(settings.registry_dir)
    app = build_app(settings, registry=registry, url=db)
    handler = InferenceHandler(app, registry)
    try:
        _loop("inference", settings.group("inference"), handler, settings, db, bootstrap,
              settings.inference_batch_size, settings.inference_batch_ms)
    finally:
        log.info("inference: predicted %d jobs", handler.predicted)
        app.close()


@consume_app.command("projections")
def consume_projections() -> None:
    """Keep the read tables (balances, prediction_history, running_jobs) from the events."""
    from psycopg_pool import ConnectionPool

    from consumers.projector import ProjectionHandler
    from infra.bootstrap import build_app
    from infra.logs import setup
    from projections.schema import create

    setup("projector")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    _topics(settings, bootstrap)
    with psycopg.connect(db, autocommit=True) as conn:
        create(conn)
    app = build_app(settings, url=db)  # the store, read to repair rows
    try:
        with ConnectionPool(db, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
            handler = ProjectionHandler(pool, app.published_history)
            _loop("projector", settings.group("projections"), handler, settings, db, bootstrap,
                  1000, 10)
    finally:
        app.close()


def reaper() -> None:
    """Fail and refund jobs that have no outcome by their deadline (one active reaper)."""
    from commands.reaper import Reaper
    from infra.bootstrap import build_app
    from infra.logs import setup

    setup("reaper")
    settings = Settings()
    db, _ = _endpoints(settings)
    app = build_app(settings, url=db)
    worker = Reaper(app, db, interval=settings.reaper_interval_seconds)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    finally:
        log.info("reaper: %d jobs expired", worker.expired)
        app.close()


def init() -> None:
    """Prepare a deployment (idempotent): event store and read tables, topics, models."""
    from api.idempotency import DDL
    from api.throttle import DDL as THROTTLE_DDL
    from commands.reaper import create_tables
    from infra.bootstrap import build_app
    from infra.cli import train
    from infra.dead_letters import create_table as create_dead_letters
    from infra.logs import setup
    from infra.pg import run_ddl
    from projections.schema import create

    setup("init")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    build_app(settings, url=db).close()  # creates the event store's tables
    with psycopg.connect(db, autocommit=True) as conn:
        create(conn)
        create_tables(conn)
        create_dead_letters(conn)
        run_ddl(conn, DDL, THROTTLE_DDL)
    log.info("init: event store, read tables, positions, dead letters, idempotency and throttle "
             "tables are ready")
    _topics(settings, bootstrap)
    log.info("init: topics %s and %s have %d partitions or more", settings.events_topic,
             settings.dead_letter_topic, settings.kafka_partitions)
    train(model=[], if_missing=True)
    log.info("init: done")


@projections_app.command("rebuild")
def projections_rebuild(name: str = typer.Argument(None, help="balances or jobs; all if omitted")) -> None:
    """Rebuild from the event store into fresh tables and swap them in atomically."""
    from infra.bootstrap import build_app
    from projections.rebuild import rebuild
    from projections.registry import NAMES

    settings = Settings()
    db, _ = _endpoints(settings)
    names = [name] if name else list(NAMES)
    if any(n not in NAMES for n in names):
        console.print(f"unknown projection {name!r}; known: {', '.join(NAMES)}")
        raise typer.Exit(2)
    app = build_app(settings, url=db)

    def progress(seen: int, position: int, rate: float) -> None:
        console.print(f"  {seen} events read, position {position}, {rate:,.0f} events/s")

    try:
        with psycopg.connect(db, autocommit=True) as conn:
            for n in names:
                console.print(f"rebuilding {n} ...")
                total = rebuild(conn, n, app.published_after, progress)
                console.print(f"rebuilt {n} from {total} events and swapped it in")
    finally:
        app.close()


@projections_app.command("status")
def projections_status() -> None:
    """Each projection's lag per partition, and its unrepaired faults."""
    from infra.bootstrap import build_app
    from infra.kafka_client import EndOffsets
    from projections.state import fault_counts, lag, offsets

    settings = Settings()
    db, bootstrap = _endpoints(settings)
    app = build_app(settings, url=db)
    ends = EndOffsets(bootstrap, settings.events_topic)
    try:
        head = app.head_position()
        with psycopg.connect(db, autocommit=True) as conn:
            from infra import positions

            relay = positions.position(conn, settings.events_topic)
            end = ends()
            behind = lag(conn, settings.events_topic, end, head - relay)
            faults = fault_counts(conn)
            known = offsets(conn, settings.events_topic)
        console.print(f"store head {head}; relay at {relay} ({head - relay} unpublished)")
        for name, events in behind.items():
            mine = {o.partition: o.kafka_offset + 1 for o in known if o.projection == name}
            worst = max(end, key=lambda p: end[p] - mine.get(p, 0), default=None)
            where = (f"; furthest behind: partition {worst} ({end[worst] - mine.get(worst, 0)} "
                     "messages)") if worst is not None and events else ""
            console.print(f"{name:<10} lag {events:>6} events{where}; unrepaired faults "
                          f"{faults[name]}")
    finally:
        ends.close()
        app.close()


def api(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8000, help="Listen port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the REST API (FastAPI on uvicorn)."""
    import uvicorn

    from infra.logs import setup

    setup("api")
    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False,
                forwarded_allow_ips=Settings().forwarded_allow_ips)


def ui(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8501, help="Listen port."),
    api_url: str = typer.Option("http://127.0.0.1:8000", envvar="CARPRICE_API_URL",
                                help="The carprice API the dashboard talks to."),
) -> None:
    """Serve the Streamlit dashboard (it talks to the API over HTTP only)."""
    import os
    import sys

    from infra.settings import REPO_ROOT

    os.environ["CARPRICE_API_URL"] = api_url
    args = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "ui" / "app.py"),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    os.execv(sys.executable, args)  # noqa: S606 - becomes the streamlit process (signals reach it)
