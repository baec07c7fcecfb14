"""Request ids, one log line per request, trace context, and the Prometheus `/metrics`.

Pipeline metrics (jobs by status, end-to-end latency, credits, relay / projection /
consumer lag) are read at scrape time from their sources of truth — the read tables,
the event store and the broker's committed offsets — so every API replica reports
the same numbers and no process has to be scraped besides the API.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra import tracing
from infra.logs import context
from projections.totals import job_totals

if TYPE_CHECKING:
    from api.container import Container
    from infra.kafka_client import EndOffsets
    from infra.settings import Settings

log = logging.getLogger("carprice.api")
_REQUEST_ID = re.compile(r"^[\w.-]{1,64}$")
JOB_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SCRAPE_CACHE_S = 5.0


class PipelineCollector:
    """Metrics computed from the database and the broker, cached for SCRAPE_CACHE_S."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] = (0.0, [])
        self._ends: EndOffsets | None = None

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            at, metrics = self._cached
            if time.monotonic() - at > SCRAPE_CACHE_S:
                metrics = self._compute()
                self._cached = (time.monotonic(), metrics)
            return list(metrics)

    def _compute(self) -> list[Metric]:
        c = getattr(self.app.state, "container", None)
        if c is None:
            return []
        out: list[Metric] = []
        try:
            out += self._from_database(c)
        except Exception as exc:  # noqa: BLE001 - a scrape never fails the API
            log.warning("metrics: database unavailable: %s", type(exc).__name__)
        try:
            out += self._from_broker(c)
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: consumer lag unavailable: %s", type(exc).__name__)
        try:
            out += self._drift(c)
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: drift unavailable: %s: %s", type(exc).__name__, exc)
        return out

    @staticmethod
    def _drift(c: Container) -> list[Metric]:
        if c.drift is None:
            return []
        psi = GaugeMetricFamily("carprice_feature_psi", "Population stability index of a feature: "
                                "training data against the model's last DRIFT_WINDOW priced cars.",
                                labels=["model", "feature"])
        unseen = GaugeMetricFamily("carprice_unseen_category_share", "Share of the model's last "
                                   "priced cars with a category its training data never had.",
                                   labels=["model", "feature"])
        drifting = GaugeMetricFamily("carprice_drifting_features", "Features of a model above "
                                     "DRIFT_PSI_THRESHOLD.", labels=["model"])
        for card in c.registry.champion_cards():
            made = c.drift.report(card.name)
            for f in made.features:
                psi.add_metric([card.name, f.feature], f.psi)
                if f.unseen_share:
                    unseen.add_metric([card.name, f.feature], f.unseen_share)
            drifting.add_metric([card.name], len(made.drifting))
        return [psi, unseen, drifting]

    def _from_database(self, c: Container) -> list[Metric]:
        if c.db is None:
            return []
        with c.db.connection() as db:
            totals = job_totals(db, JOB_LATENCY_BUCKETS)
        status = c.pipeline_status()
        jobs = GaugeMetricFamily("carprice_jobs", "Prediction jobs by status (read table).",
                                 labels=["status"])
        for name in ("queued", "started", "finished", "failed"):
            jobs.add_metric([name], totals.by_status.get(name, 0))
        credits_charged = CounterMetricFamily("carprice_credits_charged",
                                              "Credits charged for prediction jobs.")
        credits_charged.add_metric([], totals.charged)
        credits_refunded = CounterMetricFamily("carprice_credits_refunded",
                                               "Credits refunded for failed jobs.")
        credits_refunded.add_metric([], totals.refunded)
        buckets = [(str(b), n) for b, n in zip(JOB_LATENCY_BUCKETS, totals.within, strict=True)]
        latency = HistogramMetricFamily(
            "carprice_job_latency_seconds", "Job end to end: requested -> finished or failed.",
            buckets=[*buckets, ("+Inf", totals.ended)], sum_value=totals.seconds)
        store = GaugeMetricFamily("carprice_event_store_head", "Last notification id in the store.")
        store.add_metric([], status.head)
        relay_lag = GaugeMetricFamily("carprice_relay_lag_events",
                                      "Events recorded but not yet acknowledged by the broker.")
        relay_lag.add_metric([], status.relay_lag)
        out: list[Metric] = [jobs, credits_charged, credits_refunded, latency, store, relay_lag]
        if status.projection_lag is not None:
            projection_lag = GaugeMetricFamily(
                "carprice_projection_lag_events", "Events not yet applied to a read table "
                "(summed over partitions).", labels=["projection"])
            for name, lag in status.projection_lag.items():
                projection_lag.add_metric([name], lag)
            out.append(projection_lag)
            stalled = GaugeMetricFamily(
                "carprice_projection_stalled", "1 while a projection has messages waiting and "
                "has not advanced for PROJECTION_STALL_SECONDS.", labels=["projection"])
            for name in status.projection_lag:
                stalled.add_metric([name], 1.0 if name in status.stalled else 0.0)
            out.append(stalled)
        faults = GaugeMetricFamily("carprice_projection_faults",
                                   "Events a projection could not apply and has not repaired yet "
                                   "(the projection is unhealthy while > 0).", labels=["projection"])
        for name, count in status.faults.items():
            faults.add_metric([name], count)
        dead = CounterMetricFamily("carprice_dead_letters", "Messages a consumer sent to the "
                                   "dead-letter topic.", labels=["consumer", "reason"])
        for consumer, reason, count in status.dead_letters:
            dead.add_metric([consumer, reason], count)
        return [*out, faults, dead]

    def _from_broker(self, c: Container) -> list[Metric]:
        from infra.kafka_client import EndOffsets
        from infra.leases import lag as consumer_lag

        if not c.kafka_bootstrap or c.db is None:
            return []
        if self._ends is None:
            self._ends = EndOffsets(c.kafka_bootstrap, c.settings.events_topic)
        ends = self._ends()
        lag = GaugeMetricFamily("carprice_consumer_lag_messages",
                                "Messages inference has not handled, by its saved positions (the "
                                "projector's: carprice_projection_lag_events).", labels=["group"])
        name = c.settings.group("inference")
        with c.db.connection() as db:
            lag.add_metric([name], consumer_lag(db, name, c.settings.events_topic, ends))
        return [lag]


class Observe:
    """Pure ASGI middleware: request id, server span, latency histogram, one access log line."""

    def __init__(self, app: ASGIApp, http: Histogram, templates: dict[int, str]) -> None:
        self.app, self.http, self.templates = app, http, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # for the 500's problem document
        method, status = scope["method"], 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode())]}
            await send(message)

        with tracing.server_span(f"{method} {scope['path']}", headers), \
                context(request_id=request_id, trace_id=tracing.current_trace_id()):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                matched = scope.get("route")
                route = self.templates.get(id(matched)) or getattr(matched, "path", "unmatched")
                elapsed = time.perf_counter() - started
                self.http.labels(method, route, str(status)).observe(elapsed)
                if route not in ("/metrics", "/healthz"):
                    state = scope.get("state") or {}  # request.state lives here
                    log.info("%s %s %d %.1f ms", method, route, status, elapsed * 1000, extra={
                        "user_id": state.get("user_id"), "job_id": state.get("job_id"), "route": route,
                        "method": method, "status": status, "duration_ms": round(elapsed * 1000, 1)})


def install(app: FastAPI, routers: dict[str, list[APIRouter]]) -> None:
    """Request ids, access log, trace context and `/metrics` on this app.

    `routers` (prefix -> routers) name the route templates used as metric labels.
    """
    templates = {id(route): prefix + route.path for prefix, group in routers.items()
                 for router in group for route in router.routes if isinstance(route, APIRoute)}
    registry = CollectorRegistry()
    http = Histogram("carprice_http_request_duration_seconds", "HTTP request latency by route.",
                     ["method", "route", "status"], registry=registry,
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    registry.register(PipelineCollector(app))  # type: ignore[arg-type]

    app.add_middleware(Observe, http=http, templates=templates)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        settings = getattr(getattr(app.state, "container", None), "settings", None)
        if refused := metrics_refused(settings, request.headers.get("authorization", "")):
            return refused
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def metrics_refused(settings: Settings | None, authorization: str) -> Response | None:
    """Why this scrape may not read /metrics (None when it may): with METRICS_TOKEN set, only
    its bearer; without one, anyone in the embedded mode and no one in production."""
    token = settings.metrics_token if settings is not None else None
    if token:
        given = authorization.removeprefix("Bearer ").strip()
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return Response("send Authorization: Bearer <METRICS_TOKEN>\n", status_code=401,
                        headers={"WWW-Authenticate": "Bearer"}, media_type="text/plain")
    if getattr(settings, "mode", "embedded") == "production":
        return Response("not found\n", status_code=404, media_type="text/plain")
    return None
