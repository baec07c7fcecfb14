"""The FastAPI application: create_api() and the lifespan that builds its collaborators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, observability
from api.container import Container
from api.routes import auth, balance, batch, events, health, history, keys, predict, quality, webhooks
from infra.settings import Settings

MAX_BODY_BYTES = 64 * 1024
MAX_BATCH_BODY_BYTES = 16 * 1024 * 1024  # POST /predict/batch: up to 10,000 cars


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES with 413, declared or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = MAX_BATCH_BODY_BYTES if scope.get("path", "").endswith("/predict/batch") \
            else MAX_BODY_BYTES
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int = MAX_BODY_BYTES) -> None:
        body = (b'{"type":"about:blank","title":"Request too large","status":413,'
                b'"detail":"request body is larger than %d KiB"}' % (limit // 1024))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def build_container(settings: Settings | None = None) -> Container:
    """Settings, pools, the write side and the registry, built once per process."""
    from api.drift import DriftMonitor
    from api.notifier import Notifier
    from api.reads import Reads
    from commands.application import CarpriceApp
    from infra import pg, tracing
    from infra.api_keys import KeyLookup
    from infra.auth import jwt_secret
    from infra.erased import ErasedUsers
    from infra.idempotency import PgIdempotency
    from infra.schema import check
    from infra.throttle import Limit, Throttle
    from model_registry.catalog import RegistryCatalog
    from model_registry.store import Registry
    from projections.state import CHANNEL
    from projections.webhook_registrations import PgWebhooks

    settings = settings or Settings()
    tracing.setup("api", settings.otel_exporter_otlp_endpoint)  # each uvicorn worker has its own
    secret = jwt_secret(settings)  # stops the process when it is missing outside embedded mode
    db = pg.pool(settings, min_size=2)
    with db.connection() as conn:
        check(conn)  # stops with "run carprice migrate" when the schema is not this code's
    registry = Registry(settings.registry_dir)
    commands = CarpriceApp.from_settings(settings, RegistryCatalog(registry))
    read_pool = pg.async_pool(settings)
    reads = Reads(read_pool, commands.events_table, Notifier(pg.database_url(settings), CHANNEL),
                  settings.read_wait_seconds)
    throttle = Throttle(db, Limit(settings.signin_failures_per_account, settings.signin_window_seconds),
                        Limit(settings.signin_failures_per_client, settings.signin_window_seconds),
                        Limit(settings.signups_per_client, settings.signup_window_seconds),
                        Limit(settings.signins_per_client, settings.signin_window_seconds))
    return Container(settings=settings, commands=commands, registry=registry, reads=reads,
                     throttle=throttle, idempotency=PgIdempotency(db), jwt_secret=secret,
                     db=db, kafka_bootstrap=settings.kafka_bootstrap_servers,
                     webhooks=PgWebhooks(read_pool, settings.webhooks_per_user),
                     erased=ErasedUsers(read_pool), keys=KeyLookup(read_pool),
                     drift=DriftMonitor(settings, db, registry))


def create_api(container: Container | None = None) -> FastAPI:
    """The API; with no container, the lifespan builds one from the environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = container or build_container()
        if built.pipeline is None and built.db is not None:
            from api.pipeline import PipelineProbe

            built.pipeline = PipelineProbe(built)
        app.state.container = built
        await built.reads.start()
        try:
            yield
        finally:
            await built.reads.stop()
            if container is None:
                built.commands.close()
                if built.db is not None:
                    built.db.close()

    # FastAPI's own telemetry is off: observability.Observe already makes the one server span
    # per request (whose context the job's events carry) and the metrics; FastAPI's would add
    # a second request span and one per dependency, endpoint and serialisation.
    app = FastAPI(title="carprice", version="1.0.0", lifespan=lifespan,
                  description="Car price predictions billed in credits. Sign in, then use the "
                              "Authorize button (email as username).",
                  telemetry={"tracing": False, "metrics": False, "logs": False,
                             "operation_spans": False})
    app.add_middleware(BodyLimit)
    errors.install(app)
    v1 = APIRouter(prefix="/api/v1")
    routed = (auth, balance, batch, predict, quality, history, events, webhooks, keys)
    for module in routed:
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    # metric labels use route templates: one series per route, not per job id
    observability.install(app, {"/api/v1": [m.router for m in routed],
                                "": [health.router]})
    return app
