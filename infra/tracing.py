"""OpenTelemetry tracing: a job is one trace from POST /predict to its outcome.

The API's server span (child of the caller's `traceparent`, if any) is stored with
the job's `Requested` event; the relay publishes it as the W3C `traceparent` Kafka
header; inference continues the trace in a span per job and stores that span's
context with the `Completed` / `Failed` event, which the relay publishes the same way.
Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (and the
`otlp` extra is installed); without it trace ids still flow into events and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

log = logging.getLogger("carprice.tracing")
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("carprice")


def setup(service: str, otlp_endpoint: str | None = None) -> None:
    """Install the tracer provider of this process (once; the SDK is imported only here).

    With an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, read by the exporter itself) spans
    are exported; without one, trace ids still flow into events and logs."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    global _tracer
    provider = TracerProvider(resource=Resource.create({"service.name": f"carprice-{service}"}))
    if otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        except ImportError:
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter is not installed: "
                        "pip install 'carprice[otlp]'")
    trace.set_tracer_provider(provider)
    _tracer = trace.get_tracer("carprice")


def _parent(traceparent: str | None) -> otel_context.Context:
    return _propagator.extract({"traceparent": traceparent} if traceparent else {})


@contextmanager
def server_span(name: str, headers: Mapping[str, str]) -> Iterator[Span]:
    """A SERVER span for an incoming request, child of its `traceparent` header if valid."""
    parent = _propagator.extract({k: v for k, v in headers.items() if k in ("traceparent", "tracestate")})
    with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER) as span:
        yield span


def start_span(name: str, traceparent: str | None, start_time: int | None = None,
               **attributes: AttributeValue) -> Span:
    """A CONSUMER span continuing the trace of `traceparent`; the caller ends it."""
    return _tracer.start_span(name, context=_parent(traceparent), kind=SpanKind.CONSUMER,
                              start_time=start_time, attributes=attributes)


def traceparent(span: Span | None = None) -> str | None:
    """The W3C traceparent of `span` (or of the current span); None when there is none."""
    ctx = trace.set_span_in_context(span) if span is not None else otel_context.get_current()
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=ctx)
    return carrier.get("traceparent")


def trace_id_of(value: str | None) -> str | None:
    """The trace id (32 hex digits) inside a traceparent."""
    parts = (value or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def current_trace_id() -> str | None:
    """The trace id of the current span, if it is valid."""
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
