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
                  settings.kafka_partitions)


def relay(
    from_position: int = typer.Option(None, "--from-position", min=0, help=(
        "Replay: publish again every event after this position (0: all). Consumers are idempotent.")),
) -> None:
    """Publish the event store to Kafka, in order, at least once (one active relay)."""
    from commands.relay import Relay
    from infra.bootstrap import build_app
    from infra.logs import setup

    setup("relay")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    _topics(settings, bootstrap)
    app = build_app(settings, url=db)
    worker = Relay(app, db, bootstrap, settings.events_topic, rewind_to=from_position)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    try:
        worker.run()
    finally:
        app.close()


def _loop(name: str, group: str, handler: Any, settings: Settings, bootstrap: str,
          batch_size: int, batch_ms: int) -> None:
    from consumers.loop import BatchLoop
    from infra.kafka_client import consumer, producer

    loop = BatchLoop(name, consumer(bootstrap, group), settings.events_topic, handler,
                     producer(bootstrap), settings.dead_letter_topic, batch_size, batch_ms)
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
        _loop("inference", settings.group("inference"), handler, settings, bootstrap,
              settings.inference_batch_size, settings.inference_batch_ms)
    finally:
        log.info("inference: predicted %d jobs", handler.predicted)
        app.close()


@consume_app.command("projections")
def consume_projections() -> None:
    """Keep the read tables (balances, prediction_history, running_jobs) from the events."""
    from consumers.projector import ProjectionHandler
    from infra.logs import setup
    from projections.schema import create

    setup("projector")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    _topics(settings, bootstrap)
    with psycopg.connect(db, autocommit=True) as conn:
        create(conn)
        _loop("projector", settings.group("projections"),
              ProjectionHandler(conn), settings, bootstrap, 1000, 10)


def init() -> None:
    """Prepare a deployment (idempotent): event store and read tables, topics, models."""
    from api.idempotency import DDL
    from commands.relay import create_table
    from infra.bootstrap import build_app
    from infra.cli import train
    from infra.logs import setup
    from infra.pg import run_ddl
    from projections.schema import create

    setup("init")
    settings = Settings()
    db, bootstrap = _endpoints(settings)
    build_app(settings, url=db).close()  # creates the event store's tables
    with psycopg.connect(db, autocommit=True) as conn:
        create(conn)
        create_table(conn)
        run_ddl(conn, DDL)
    log.info("init: event store, read tables, relay position and idempotency tables are ready")
    _topics(settings, bootstrap)
    log.info("init: topics %s and %s have %d partitions or more", settings.events_topic,
             settings.dead_letter_topic, settings.kafka_partitions)
    train(model=[], if_missing=True)
    log.info("init: done")


@projections_app.command("rebuild")
def projections_rebuild(name: str = typer.Argument(None, help="balances or jobs; all if omitted")) -> None:
    """Rebuild from the event store into fresh tables and swap them in atomically."""
    from infra.bootstrap import build_app
    from infra.published import from_notification
    from projections.projectors import PROJECTIONS
    from projections.rebuild import rebuild

    settings = Settings()
    db, _ = _endpoints(settings)
    app = build_app(settings, url=db)
    names = [name] if name else list(PROJECTIONS)
    if any(n not in PROJECTIONS for n in names):
        console.print(f"unknown projection {name!r}; known: {', '.join(PROJECTIONS)}")
        raise typer.Exit(2)

    def read(after: int, limit: int) -> list[Any]:
        rows = app.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [from_notification(n, app.mapper.transcoder) for n in rows]

    def progress(seen: int, position: int, rate: float) -> None:
        console.print(f"  {seen} events read, position {position}, {rate:,.0f} events/s")

    try:
        with psycopg.connect(db, autocommit=True) as conn:
            for n in names:
                console.print(f"rebuilding {n} ...")
                total = rebuild(conn, n, read, progress)
                console.print(f"rebuilt {n} from {total} events and swapped it in")
    finally:
        app.close()


@projections_app.command("status")
def projections_status() -> None:
    """Each projection's position and lag behind the event store."""
    from infra.bootstrap import build_app
    from projections.rebuild import status
    from projections.schema import create

    settings = Settings()
    db, _ = _endpoints(settings)
    app = build_app(settings, url=db)
    try:
        head = app.recorder.max_notification_id() or 0
        with psycopg.connect(db, autocommit=True) as conn:
            create(conn)
            for row in status(conn, head):
                console.print(f"{row['projection']:<10} position {row['position']:>8}  "
                              f"lag {row['lag']:>6} events (store head {head})")
    finally:
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
                log_level="warning", access_log=False)


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
