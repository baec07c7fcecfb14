"""Models and prediction jobs: list models, submit a job, read a job."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from uuid import UUID, uuid5

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import Commands, CurrentCaller, CurrentUser, Keys, Models, ReadSide
from api.errors import ApiError
from api.idempotency import body_hash, check_key, claimed
from api.reads import Permit, PermitEnded
from api.reads import ReadSide as ReadSideT
from api.schemas import (
    JobPublic,
    ModelPublic,
    PredictAccepted,
    PredictCreate,
    PredictorsPublic,
    ReceiptPublic,
)
from commands.application import CarpriceApp
from commands.receipts import receipt
from commands.results import Accepted
from domain.errors import JobNotFound
from domain.ids import NAMESPACE
from domain.job import PredictionJob
from domain.text import printable
from infra import tracing
from infra.auth import TokenError
from infra.idempotency import KeyInFlight
from projections import queries

router = APIRouter(tags=["predictions"])


@router.get("/predictors", response_model=PredictorsPublic)
def predictors(_: CurrentUser, models: Models) -> PredictorsPublic:
    """The models you can use, cheapest first, with price and cross-validated metrics."""
    return PredictorsPublic(models=[
        ModelPublic(model_name=c.name, price=models.price(c.name), version=c.version, metrics=c.metrics,
                    description=c.description, explain_price=c.explain_price or None,
                    interval_level=c.interval.get("level")) for c in models.champion_cards()])


@router.get("/predictors/{model_name}/card")
def model_card(model_name: str, _: CurrentUser, models: Models) -> dict[str, Any]:
    """A model's card: input schema (ranges, categories, brand -> models), metrics (with the
    coverage and width of its 80 % ranges), price, the explanation's surcharge."""
    from model_registry.store import RegistryError

    try:
        card = models.card(model_name)
    except RegistryError:
        raise ApiError(404, "Unknown model", f"unknown model {model_name[:64]!r}") from None
    return {"model_name": card.name, "version": card.version, "price": models.price(card.name),
            "metrics": card.metrics, "cv": card.cv, "input_schema": card.input_schema,
            "training_rows": card.training_rows, "created_at": card.created_at, "oof": card.oof,
            "oof_range": card.oof_range, "interval": card.interval,
            "explain_price": card.explain_price or None}


@router.post("/predict", response_model=PredictAccepted)
def predict(body: PredictCreate, caller: CurrentCaller, keys: Keys, commands: Commands,
            request: Request, idempotency_key: Annotated[str | None, Header()] = None) -> PredictAccepted:
    """Submit a prediction job; its price is held now, spent when it finishes, given back if
    it fails."""
    user = caller.user
    key = check_key(idempotency_key)
    # without `explain` the digest is what it was before the field existed (stored keys hold)
    digest = body_hash(body.model_dump(exclude=None if body.explain else {"explain"}))
    job_id = uuid5(NAMESPACE, f"job:{user}:{key}") if key else None
    if key and job_id:  # (job_id is set whenever key is; both named for the type checker)
        try:
            if (previous := keys.replay(user, "predict", key, digest)) is not None:
                return PredictAccepted(**previous)
        except KeyInFlight:
            # The claim is held: by a request still running, or by one whose answer was lost
            # after its commit (a 503 while PostgreSQL restarted, a SIGKILLed worker), whose
            # claim could not be given back. The job id comes from the key, so the store
            # tells which: a job already charged is that request's answer.
            if (done := commands.accepted(user, job_id)) is None:
                raise
            return _accepted(done)
    with claimed(keys, user, "predict", key):
        accepted = commands.request_prediction(user, body.model_name, body.data, job_id=job_id,
                                               traceparent=tracing.traceparent(),
                                               deadline_seconds=body.deadline_seconds,
                                               explain=body.explain,
                                               api_key=caller.key.key_id if caller.key else None)
        request.state.job_id = accepted.job_id
        result = _accepted(accepted)
        if key:
            keys.remember(user, "predict", key, digest, result.model_dump(mode="json"))
    return result


def _accepted(accepted: Accepted) -> PredictAccepted:
    return PredictAccepted(job_id=accepted.job_id, model_name=accepted.model_name,
                           model_version=accepted.model_version, price=accepted.price,
                           balance=accepted.balance, deadline=accepted.deadline,
                           warnings=list(accepted.warnings))


def public_job(row: queries.JobRow, stale: bool = False) -> JobPublic:
    """A job row as the API shows it."""
    return JobPublic(job_id=row.job_id, status=row.status, model_name=row.model_name,
                     model_version=row.model_version, price=row.price,
                     created_at=row.created_at, started_at=row.started_at,
                     finished_at=row.finished_at, result=row.result, error=row.error,
                     features=row.features, deadline=row.deadline, stale=stale,
                     interval=row.interval, explanation=row.explanation, explain=row.explain)


def _from_store(job: PredictionJob) -> JobPublic:
    return JobPublic(job_id=job.id, status=job.status, model_name=job.model_name,
                     model_version=job.model_version, price=job.price, created_at=job.created_on,
                     finished_at=None, result=job.result, error=job.error,
                     features=job.features, deadline=job.deadline, stale=True,
                     interval=getattr(job, "interval", None),
                     explanation=getattr(job, "explanation", None),
                     explain=getattr(job, "explain", False))


async def read_job(reads: ReadSideT, commands: CarpriceApp, user: UUID, job_id: UUID,
                   wait: float = 0.0, permit: Permit | None = None) -> JobPublic:
    """A job of this user from the read table; with `wait`, once it has ended (long-poll).

    A row that exists already reflects the caller's own write (the request), so it is
    answered at once (or, long-polling, as soon as it ends). Without a row, the store says
    at once whose job it is: an unknown id and another user's id are the same immediate 404
    (neither waits for the read side, so the time of the answer tells nothing). Only the
    caller's own job, accepted but not projected yet, waits for its row, bounded; then it is
    answered from the write side with `stale: true`. A long-poll ends with a 401 as soon as
    the caller's token expires or its account is erased (`permit`).
    """
    try:
        return await _read_job(reads, commands, user, job_id, wait, permit)
    except PermitEnded:
        raise TokenError("the token expired or its account was erased while waiting; sign in "
                         "again") from None


async def _read_job(reads: ReadSideT, commands: CarpriceApp, user: UUID, job_id: UUID,
                    wait: float, permit: Permit | None) -> JobPublic:
    started = time.monotonic()
    if wait:  # one subscription from the first read to the end: one query per change
        row = await reads.job_until_ended(user, job_id, wait, first_show=True, permit=permit)
    else:
        row = await reads.job(user, job_id)
    if row is not None:
        return public_job(row)
    job = await run_in_threadpool(commands.job, job_id, user)  # JobNotFound: 404, at once
    if wait:
        row = await reads.job_until_ended(user, job_id, _left(wait, started), permit=permit)
    else:
        row = await reads.job(user, job_id, wait=True)
    return public_job(row) if row is not None else _from_store(job)


def _left(wait: float, started: float) -> float:
    return max(0.0, wait - (time.monotonic() - started))


def parse_job_id(raw: object) -> UUID:
    try:
        return UUID(str(raw))
    except ValueError:
        raise JobNotFound(printable(raw, 64)) from None


WAIT_SECONDS = 30
Wait = Annotated[float | None, Query(
    ge=0, le=WAIT_SECONDS, description="long-poll: answer as soon as the job has ended, or after "
    f"this many seconds (at most {WAIT_SECONDS}) with its status then", examples=[25])]


@router.get("/predict/{job_id}", response_model=JobPublic)
async def get_job(job_id: str, caller: CurrentCaller, reads: ReadSide, commands: Commands,
                  wait: Wait = None) -> JobPublic:
    """One of your jobs: status, result or error, timestamps, deadline.

    Poll it, or long-poll with `?wait=25`: the answer comes the moment the job ends."""
    return await read_job(reads, commands, caller.user, parse_job_id(job_id), wait or 0.0, caller)


@router.get("/predict", response_model=JobPublic,
            openapi_extra={"requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/JobQuery"}}}}})
async def get_job_compat(request: Request, caller: CurrentCaller, reads: ReadSide, commands: Commands,
                         job_id: Annotated[str | None, Query(max_length=100)] = None,
                         wait: Wait = None) -> JobPublic:
    """One of your jobs by `?job_id=`, or (old clients) by a JSON body {"job_id": ...}."""
    if job_id is None:
        raw = await request.body()
        try:
            job_id = json.loads(raw or b"{}").get("job_id") if raw else None
        except (ValueError, AttributeError, RecursionError):
            raise ApiError(422, "Malformed request", "body must be JSON like {\"job_id\": \"...\"}") from None
        if job_id is None:
            raise ApiError(422, "Malformed request", "job_id is required (query or JSON body)")
    return await read_job(reads, commands, caller.user, parse_job_id(job_id), wait or 0.0, caller)


# unset fields stay out: a receipt without a key has no `api_key` at all, as it is rebuilt
@router.get("/predict/{job_id}/receipt", response_model=ReceiptPublic,
            response_model_exclude_unset=True)
def get_receipt(job_id: str, user: CurrentUser, commands: Commands, models: Models) -> dict[str, Any]:
    """The receipt of one of your jobs: the model version with the sha256 of its card and
    artifact, the sha256 of your input, the result, the credits held, paid and given back, and
    the events that moved them (with their positions). Keep it: `carprice audit receipt`
    proves it against the event store, and any change to it is caught."""
    return receipt(commands, commands.job(parse_job_id(job_id), user), models.fingerprint)
