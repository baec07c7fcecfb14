"""The long-running processes: relay, reaper, the consumers, the API and the dashboard.

Each is composed here from the factories its layers offer, from its own Settings.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.context import migrated, settings
from infra.settings import Settings
from infra.signals import stop_on_signals

if TYPE_CHECKING:
    from commands.application import CarpriceApp
    from consumers.assignment import Assignment
    from consumers.loop import BatchHandler, Marks
    from infra.positions import Follower
    from model_registry.store import Registry

consume = typer.Typer(help="Kafka consumer processes.")
log = logging.getLogger("carprice")


def write_side(s: Settings, registry: Registry | None = None) -> CarpriceApp:
    """The write side (CarpriceApp) with the registry as its catalogue."""
    from commands.application import CarpriceApp
    from model_registry.catalog import RegistryCatalog
    from model_registry.store import Registry

    return CarpriceApp.from_settings(s, RegistryCatalog(registry or Registry(s.registry_dir)))


def topics(s: Settings) -> None:
    """Wait for the broker; create the topics that are missing."""
    from infra.kafka_client import ensure_topics, wait_ready

    assert s.kafka_bootstrap_servers  # noqa: S101 - settings() guarantees it
    wait_ready(s.kafka_bootstrap_servers)
    ensure_topics(s.kafka_bootstrap_servers, [s.events_topic, s.dead_letter_topic],
                  s.kafka_partitions, s.kafka_replication_factor)


def relay(
    from_position: int = typer.Option(None, "--from-position", min=0, help=(
        "Replay: publish again every event after this position (0: all). Consumers are idempotent.")),
) -> None:
    """Publish the event store to Kafka, in order, at least once (one active relay)."""
    from commands.relay import Relay
    from infra.kafka_client import EndOffsets, producer
    from infra.logs import setup
    from infra.positions import Follower

    s = migrated(settings())
    setup("relay", s)
    topics(s)
    bootstrap = s.kafka_bootstrap_servers or ""
    app = write_side(s)
    ends = EndOffsets(bootstrap, s.events_topic)
    worker = Relay(app, Follower(s.database_url or "", s.events_topic), s.events_topic,
                   producer=lambda: producer(bootstrap),
                   end_offsets=ends, prepare=lambda: topics(s), rewind_to=from_position,
                   check_every=s.relay_check_seconds)
    stop_on_signals("relay", worker.stop)
    try:
        worker.run()
    finally:
        ends.close()
        app.close()


def reaper() -> None:
    """Fail and refund jobs that have no outcome by their deadline (one active reaper)."""
    from commands.reaper import Reaper
    from infra.logs import setup

    s = migrated(settings(kafka=False))
    setup("reaper", s)
    app = write_side(s)
    worker = Reaper(app, s.database_url or "", interval=s.reaper_interval_seconds)
    stop_on_signals("reaper", worker.stop)
    try:
        worker.run()
    finally:
        log.info("reaper: %d jobs expired", worker.expired)
        app.close()


def _loop(name: str, handler: BatchHandler, s: Settings, batch_size: int, batch_ms: int,
          assignment: Assignment, recover: Callable[[], None] = lambda: None,
          save_positions: Callable[[Marks], None] | None = None) -> None:
    """Run a BatchLoop on `assignment`; `recover` heals the handler's connections after a
    database outage."""
    from consumers.loop import BatchLoop, FailurePolicy, LoopSettings
    from infra.dead_letters import PgDeadLetterLog
    from infra.kafka_client import consumer, producer
    from infra.pg import database_unreachable, discard_broken, pool
    from infra.wake import PgWaker

    bootstrap = s.kafka_bootstrap_servers or ""
    waker = PgWaker(s.database_url or "")
    with pool(s, max_size=2) as dead_letter_pool:
        def heal() -> None:
            recover()
            discard_broken(dead_letter_pool)

        policy = FailurePolicy(batch_attempts=s.consumer_batch_attempts,
                               message_attempts=s.consumer_message_attempts,
                               backoff_ms=s.consumer_backoff_ms, transient=database_unreachable,
                               recover=heal)
        settings = LoopSettings(max_records=batch_size, batch_ms=batch_ms,
                                idle_after=s.consumer_idle_after_seconds,
                                idle_poll=s.consumer_idle_poll_seconds,
                                commit_every=s.consumer_commit_seconds, policy=policy)
        loop = BatchLoop(name, consumer(bootstrap, None, fetch_max_wait_ms=s.fetch_max_wait_ms),
                         handler, producer(bootstrap), s.dead_letter_topic, assignment, settings,
                         dead_letters=PgDeadLetterLog(dead_letter_pool, s.dead_letter_topic),
                         waker=waker, save_positions=save_positions)
        stop_on_signals(name, loop.stopping.set)
        try:
            loop.run()
        finally:
            waker.close()


@consume.command("inference")
def consume_inference() -> None:
    """Predict requested jobs in micro-batches and record their outcomes; members share the
    partitions by leases in PostgreSQL (infra/leases.py)."""
    from consumers.assignment import Assignment
    from consumers.inference import InferenceHandler
    from consumers.shadow import Shadow
    from infra import pg, tracing
    from infra.leases import Leases
    from infra.logs import setup
    from infra.shadow_prices import PgShadowPrices
    from model_registry.store import Registry

    s = migrated(settings())
    setup("inference", s)
    tracing.setup("inference", s.otel_exporter_otlp_endpoint)  # spans per job continue the request's
    topics(s)
    registry = Registry(s.registry_dir)
    app = write_side(s, registry)
    shadow_db = pg.pool(s, max_size=2)
    shadow = Shadow(registry, PgShadowPrices(shadow_db), s.shadow_share)
    handler = InferenceHandler(app, registry, shadow)
    handler.warm()
    # its share of the partitions, leased in PostgreSQL among the live members (no group)
    leases = Leases(s.database_url or "", s.group("inference"), s.events_topic)
    assignment = Assignment("inference", s.events_topic, leases.saved,
                            refresh_seconds=s.consumer_lease_seconds, leases=leases)
    try:
        _loop("inference", handler, s, s.inference_batch_size, s.inference_batch_ms, assignment,
              recover=app.discard_broken_connections, save_positions=leases.save)
    finally:
        leases.close()
        shadow.close()
        shadow_db.close()
        log.info("inference: predicted %d jobs; %d shadow prices (%d jobs dropped)",
                 handler.predicted, shadow.priced, shadow.dropped)
        app.close()


@consume.command("projections")
def consume_projections() -> None:
    """Keep the read tables (balances, prediction_history, running_jobs) from the events: one
    active projector (an advisory lock), reading by assignment from the positions it keeps;
    others stand by and take over within a second of its death."""
    from consumers.assignment import Assignment
    from consumers.projector import ProjectionHandler, applied_offsets
    from infra.logs import setup
    from infra.pg import DATABASE_DOWN, Pool, discard_broken, pool
    from infra.positions import Follower

    s = migrated(settings())
    setup("projector", s)
    topics(s)
    name = f"projector:{s.events_topic}"
    standing_by = threading.Event()
    while True:
        stop_on_signals("projector", standing_by.set)  # the loop's own while it leads
        try:
            with Follower(s.database_url or "", name) as leader:
                if not leader.lead(standing_by):
                    return  # stopped while standing by
                lost = _watch_leadership(leader)
                app = write_side(s)  # the store, read to repair rows
                try:
                    with pool(s, max_size=2) as rows:
                        def heal(rows: Pool = rows, app: CarpriceApp = app) -> None:
                            discard_broken(rows)
                            app.discard_broken_connections()

                        assignment = Assignment("projector", s.events_topic,
                                                lambda: applied_offsets(rows, s.events_topic))
                        _loop("projector", ProjectionHandler(rows, app.published_history), s,
                              1000, s.projector_batch_ms, assignment, recover=heal)
                finally:
                    app.close()
                if not lost.is_set():
                    return  # stopped by a signal
        except DATABASE_DOWN as exc:
            log.warning("projector: the database is unavailable (%s: %s)", type(exc).__name__,
                        str(exc)[:200])
        log.info("projector: leading again once the database answers")
        if standing_by.wait(1.0):
            return


def _watch_leadership(leader: Follower, every: float = 1.0, again_within: float = 30.0,
                      ) -> threading.Event:
    """A thread that asks the leader's connection every `every` s whether it still holds its
    lock. A database restart ends the session and the lock with it: the thread then takes the
    lock again on a new session as soon as the database answers, and the loop goes on (its
    batches wait for the database meanwhile anyway). If another projector took the lock first,
    or the database stays away for `again_within` s, the loop stops (and the projector stands
    by, or leads again), so that two projectors are never active for longer than that."""
    import psycopg

    from consumers import loop

    lost = threading.Event()

    def stop(why: str) -> None:
        log.error("projector: %s; stopping so that only one projector is active", why)
        lost.set()
        loop.stop_all()

    def watch() -> None:
        while not lost.is_set():
            time.sleep(every)
            try:
                leader.conn.execute("SELECT 1")
                continue
            except Exception as exc:  # noqa: BLE001 - any failure means the lock may be gone
                log.warning("projector: the leadership connection failed (%s: %s); taking the "
                            "lead again as soon as the database answers", type(exc).__name__, exc)
            deadline = time.monotonic() + again_within
            while True:
                try:
                    if leader.lead_again():
                        log.info("projector: leads again on a new session")
                    else:
                        stop("another projector took the lead while the database was away")
                    break
                except psycopg.Error as exc:
                    if time.monotonic() > deadline:
                        stop(f"the database did not answer for {again_within:.0f} s ({exc})")
                        break
                    time.sleep(0.2)

    threading.Thread(target=watch, name="leadership", daemon=True).start()
    return lost


def webhooks() -> None:
    """Send the webhook deliveries the projector queues: signed, retried with backoff."""
    from infra.logs import setup
    from infra.pg import pool
    from infra.wake import PgWaker
    from infra.webhook_http import Poster
    from infra.webhook_sender import Retry, Sender
    from projections.webhooks import CHANNEL

    s = migrated(settings(kafka=False))
    setup("webhooks", s)
    poster = Poster(timeout=s.webhook_timeout_seconds, allowed=s.webhook_targets)
    waker = PgWaker(s.database_url or "", CHANNEL)
    with pool(s, max_size=4) as db:
        sender = Sender(db, poster.post, waker, Retry(s.webhook_max_attempts, s.webhook_backoff_seconds,
                                                      s.webhook_backoff_max_seconds))
        stop_on_signals("webhooks", sender.stop)
        try:
            sender.run()
        finally:
            waker.close()
            poster.close()


def api(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8000, help="Listen port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the REST API (FastAPI on uvicorn)."""
    import uvicorn

    from infra.logs import setup

    s = migrated(settings())
    # the workers build their own Settings from the environment: hand them the addresses
    os.environ["DATABASE_URL"] = s.database_url or ""
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = s.kafka_bootstrap_servers or ""
    setup("api", s)
    uvicorn.run("api.main:create_api", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, proxy_headers=bool(s.forwarded_allow_ips),
                forwarded_allow_ips=s.forwarded_allow_ips or None)


def ui(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8501, help="Listen port."),
    api_url: str = typer.Option("http://127.0.0.1:8000", envvar="CARPRICE_API_URL",
                                help="The carprice API the dashboard talks to."),
) -> None:
    """Serve the Streamlit dashboard (it talks to the API over HTTP only)."""
    from importlib.util import find_spec

    os.environ["CARPRICE_API_URL"] = api_url
    spec = find_spec("ui")  # located, not imported: the dashboard shares no code with the rest
    assert spec is not None and spec.origin  # noqa: S101 - installed with carprice
    script = Path(spec.origin).resolve().parent / "dashboard.py"
    args = [sys.executable, "-m", "streamlit", "run", str(script),
            "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            # nothing edits the installed dashboard: no file watcher waking up to look
            "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer"]
    os.execv(sys.executable, args)  # noqa: S606 - becomes the streamlit process (signals reach it)
