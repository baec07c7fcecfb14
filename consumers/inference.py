"""Inference: PredictionRequested -> the pinned model -> complete or fail (+ refund).

Requests are predicted in micro-batches per model version; a batch that the
model rejects is retried row by row so one bad car fails alone, with its reason.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from commands.application import CarpriceApp, Outcome
from consumers.loop import BatchHandler
from domain.events import JOB_REQUESTED
from domain.features import Car
from domain.job import MODEL_ERROR, MODEL_UNAVAILABLE
from infra import tracing
from infra.published import PublishedEvent
from model_registry.features import Cars, columns_of, frame_of
from model_registry.serving import Quote, quote
from model_registry.store import Registry

if TYPE_CHECKING:
    from consumers.shadow import Shadow
    from model_registry.store import Servable

# a job's answer: (price, its range) or why the model could not price it
Answer = Quote | str

log = logging.getLogger("carprice.inference")


def _valid(price: object) -> bool:
    return isinstance(price, float | int) and math.isfinite(price) and price > 0


class InferenceHandler(BatchHandler):
    """Handles one batch of events: predicts the requested jobs and records outcomes."""

    wants = frozenset({JOB_REQUESTED})  # the loop commits the rest undecoded

    def __init__(self, app: CarpriceApp, registry: Registry, shadow: Shadow | None = None) -> None:
        self.app = app
        self.registry = registry
        self.shadow = shadow  # challengers price a share of the jobs once their outcomes are saved
        self.predicted = 0

    def warm(self) -> int:
        """Load (and compile for serving) the champion of every model before the first job, so
        that no job waits for it (challengers load in the shadow's thread); a version that
        cannot load is logged and left to fail its jobs as unavailable. Returns how many were
        loaded."""
        loaded = 0
        for card in self.registry.champion_cards():
            started = time.perf_counter()
            try:
                self.registry.load(card.name, card.version)
            except Exception as exc:  # noqa: BLE001 - its jobs fail as unavailable, the rest go on
                log.error("cannot load %s v%s: %s: %s", card.name, card.version,
                          type(exc).__name__, exc)
                continue
            loaded += 1
            log.info("loaded %s v%s in %.0f ms", card.name, card.version,
                     (time.perf_counter() - started) * 1000)
        return loaded

    def healthy(self) -> bool:
        """The event store answers (when it does not, nothing is the message's fault)."""
        self.app.head_position()
        return True

    def on_dead_letter(self, event: PublishedEvent, error: BaseException) -> None:
        """A request nobody could handle: fail the job and refund it, so no credit stays held."""
        if event.type == JOB_REQUESTED:
            failed = self.app.dead_letter_prediction(UUID(event.aggregate_id),
                                                     f"{type(error).__name__}: {error}"[:300])
            log.error("job %s dead-lettered%s", event.aggregate_id,
                      ": failed and refunded" if failed else " (it had already ended)",
                      extra={"job_id": event.aggregate_id, "user_id": event.user_id})

    def __call__(self, events: list[PublishedEvent]) -> None:
        groups: dict[tuple[str, str], list[PublishedEvent]] = defaultdict(list)
        for e in events:
            if e.type == JOB_REQUESTED:
                groups[(e.data["model_name"], e.data["model_version"])].append(e)
        outcomes: list[Outcome] = []
        started, started_ns = time.perf_counter(), time.time_ns()
        for (name, version), requests in groups.items():
            outcomes += self._predict(name, version, requests)
        if outcomes:
            # one span per job, continuing the trace of its request; its context goes with the outcome
            requested = [e for group in groups.values() for e in group]  # the order of `outcomes`
            spans = [tracing.start_span("inference.predict", e.traceparent, started_ns,
                                        job_id=e.aggregate_id, model=e.data["model_name"]) for e in requested]
            outcomes = [replace(o, traceparent=tracing.traceparent(span), user_id=UUID(e.user_id))
                        for o, span, e in zip(outcomes, spans, requested, strict=True)]
            changed = self.app.record_outcomes(outcomes)
            if self.shadow is not None:
                self.shadow.offer(requested, outcomes)  # saved first: the shadow never holds them up
            for o, e, span in zip(outcomes, requested, spans, strict=True):
                span.end()
                outcome = f"failed: {o.error}" if o.error else f"done: price {o.result}"
                log.info("job %s %s", o.job_id, outcome, extra={
                    "job_id": o.job_id, "user_id": e.user_id, "trace_id": tracing.trace_id_of(o.traceparent)})
            self.predicted += len(outcomes)
            failed = sum(o.error is not None for o in outcomes)
            log.info("batch of %d requests: %d completed, %d failed, %d newly recorded, %.1f ms",
                     len(outcomes), len(outcomes) - failed, failed, changed,
                     (time.perf_counter() - started) * 1000)

    def _predict(self, name: str, version: str, requests: list[PublishedEvent]) -> list[Outcome]:
        ids = [UUID(e.aggregate_id) for e in requests]
        try:
            model = self.registry.load(name, version)
        except Exception as exc:  # noqa: BLE001 - missing, tampered, unreadable: the jobs fail
            log.error("cannot load %s v%s: %s: %s", name, version, type(exc).__name__, exc)
            return [Outcome(i, error=f"model {name} v{version} is unavailable", code=MODEL_UNAVAILABLE)
                    for i in ids]
        cars: list[Car] = [e.data["features"] for e in requests]
        started = time.perf_counter()
        try:
            answers: list[Answer] = list(quote(model, columns_of(cars)))
        except Exception:  # noqa: BLE001 - isolate the bad rows below
            answers = [self._predict_one(model, columns_of([car])) for car in cars]
        predict_ms = (time.perf_counter() - started) * 1000 / len(requests)
        explanations = self._explain(model, cars, requests, answers)
        now = datetime.now(UTC)
        outcomes = []
        for job_id, event, answer, explained in zip(ids, requests, answers, explanations,
                                                     strict=True):
            if isinstance(answer, str):
                outcomes.append(Outcome(job_id, error=answer, code=MODEL_ERROR))
                continue
            price, interval = answer
            if not _valid(price):
                outcomes.append(Outcome(job_id, error=f"the model produced no usable price ({price})",
                                        code=MODEL_ERROR))
                continue
            queue_ms = (now - event.timestamp).total_seconds() * 1000
            explanation, explain_error = explained
            outcomes.append(Outcome(job_id, result=round(price, 2), model_version=version,
                                    timings={"queue_ms": round(queue_ms, 2),
                                             "predict_ms": round(predict_ms, 3),
                                             "batch_size": len(requests)},
                                    interval=interval, explanation=explanation,
                                    explain_error=explain_error))
        return outcomes

    @staticmethod
    def _explain(model: Servable, cars: list[Car], requests: list[PublishedEvent],
                 answers: list[Answer]) -> list[tuple[dict[str, Any] | None, str | None]]:
        """(explanation, why not) per request; only the jobs that bought one are explained,
        and a failure costs only the explanation (its surcharge is refunded)."""
        out: list[tuple[dict[str, Any] | None, str | None]] = [(None, None)] * len(requests)
        wanted = [i for i, (e, a) in enumerate(zip(requests, answers, strict=True))
                  if e.data.get("explain") and not isinstance(a, str)]
        if not wanted:
            return out
        if not hasattr(model, "explain"):
            return [(None, "this model version cannot explain") if i in wanted else o
                    for i, o in enumerate(out)]
        frame = frame_of(columns_of(cars))
        try:
            made = model.explain(frame.iloc[wanted])
            for i, explanation in zip(wanted, made, strict=True):
                out[i] = (explanation, None)
        except Exception:  # noqa: BLE001 - one by one: only the car that breaks it goes without
            for i in wanted:
                try:
                    out[i] = (model.explain(frame.iloc[[i]])[0], None)
                except Exception as exc:  # noqa: BLE001 - the surcharge is refunded
                    log.warning("explanation of job %s failed: %s: %s", requests[i].aggregate_id,
                                type(exc).__name__, exc)
                    out[i] = (None, f"{type(exc).__name__}: {exc}"[:300])
        return out

    @staticmethod
    def _predict_one(model: Servable, row: Cars) -> Answer:
        try:
            return quote(model, row)[0]
        except Exception as exc:  # noqa: BLE001 - becomes the job's failure reason
            return f"the model could not handle this input: {type(exc).__name__}: {exc}"[:500]

