"""Fleet batches: price up to 10,000 cars with one model, charged together, one job per row."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, TypeVar
from uuid import UUID, uuid5

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from api.csv_text import csv_text
from api.deps import Commands, CurrentCaller, CurrentUser, Keys, ReadSide
from api.errors import ApiError
from api.idempotency import body_hash, check_key, claimed
from api.schemas import BatchAccepted, BatchCreate, BatchPublic
from api.uploads import UploadProblem, csv_cars, json_cars, spool
from domain.errors import BatchNotFound
from domain.ids import NAMESPACE
from model_registry.features import FEATURES
from projections.queries import BatchRow

router = APIRouter(tags=["batches"])
T = TypeVar("T")

CSV_EXAMPLE = ("car_ID,symboling,CarName,fueltype,aspiration,doornumber,carbody,drivewheel,"
               "enginelocation,wheelbase,carlength,carwidth,carheight,curbweight,enginetype,"
               "cylindernumber,enginesize,fuelsystem,boreratio,stroke,compressionratio,horsepower,"
               "peakrpm,citympg,highwaympg,price\n1,3,alfa-romero giulia,gas,std,two,convertible,rwd,"
               "front,88.6,168.8,64.1,48.8,2548,dohc,four,130,mpfi,3.47,2.68,9,111,5000,21,27,13495\n")
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": BatchCreate.model_json_schema(),
                             "example": {"model_name": "linear_regression", "cars": ["..."]}},
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["file", "model_name"], "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "a CSV with the dataset's columns (CarName is split "
                                        "into brand and model) or the 25 features"},
                "model_name": {"type": "string"}}},
            "example": {"model_name": "linear_regression", "file": CSV_EXAMPLE}},
        "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
    },
}


def public(row: BatchRow) -> BatchPublic:
    """A batch as the API shows it."""
    ended = row.done + row.failed
    return BatchPublic(batch_id=row.batch_id, model_name=row.model_name,
                       model_version=row.model_version, price=row.price,
                       total_price=row.price * row.rows, rows=row.rows, done=row.done,
                       failed=row.failed, pending=row.rows - ended,
                       status="finished" if ended >= row.rows else "running", source=row.source,
                       created_at=row.created_at, finished_at=row.finished_at,
                       refunded=row.price * row.failed)


async def _cars(request: Request) -> tuple[str, list[Any], str]:
    """(model name, cars, source) from a JSON body, a multipart CSV upload or a bare CSV,
    each read as a stream in a worker thread (api/uploads.py)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)  # files are spooled by Starlette
        upload, model = form.get("file"), form.get("model_name")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "Malformed request", "file: upload the CSV as the `file` field")
        if not isinstance(model, str) or not model.strip():
            raise ApiError(422, "Malformed request", "model_name: a form field naming the model")
        return model.strip(), await _parsed(csv_cars, upload.file), "csv"
    if kind in ("text/csv", "application/csv"):
        model = request.query_params.get("model_name", "").strip()
        if not model:
            raise ApiError(422, "Malformed request", "model_name: pass it in the query string "
                           "with a text/csv body")
        with await spool(request.stream()) as body:
            return model, await _parsed(csv_cars, body), "csv"
    with await spool(request.stream()) as body:
        name, cars = await _parsed(json_cars, body)
    try:
        parsed = BatchCreate.model_validate({"model_name": name, "cars": cars})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, "Malformed request", f"{where}: {first['msg']}") from None
    return parsed.model_name, list(parsed.cars), "json"


async def _parsed(parse: Callable[[IO[bytes]], T], file: IO[bytes]) -> T:
    try:
        return await run_in_threadpool(parse, file)
    except UploadProblem as exc:
        raise ApiError(422, "Malformed request", str(exc)) from None


@router.post("/predict/batch", response_model=BatchAccepted, status_code=202,
             openapi_extra={"requestBody": REQUEST_BODY},
             responses={402: {"description": "the balance does not cover rows x price"},
                        422: {"description": "the bad rows, each with its fields (nothing is "
                                             "charged)"}})
async def submit(request: Request, caller: CurrentCaller, commands: Commands, keys: Keys,
                 idempotency_key: str | None = Header(None)) -> BatchAccepted:
    """Price a fleet: a CSV upload (the dataset's own columns work) or a JSON list of up to
    10,000 cars, with one model. Every row is validated first; then rows x price is charged in
    one transaction and each row runs as its own job: a row that fails is refunded alone.
    Follow it at `GET /predict/batch/{batch_id}`; read it at `.../results.csv`."""
    user, api_key = caller.user, caller.key.key_id if caller.key else None
    key = check_key(idempotency_key)
    model, cars, source = await _cars(request)
    digest = body_hash({"model_name": model, "cars": cars})
    if key and (previous := keys.replay(user, "batch", key, digest)) is not None:
        return BatchAccepted(**previous)
    batch_id = uuid5(NAMESPACE, f"batch:{user}:{key}") if key else None
    with claimed(keys, user, "batch", key):
        accepted = await run_in_threadpool(commands.request_batch, user, model, cars, source,
                                           batch_id, api_key)
        result = BatchAccepted(batch_id=accepted.batch_id, model_name=accepted.model_name,
                               model_version=accepted.model_version, price=accepted.price,
                               rows=accepted.rows, total_price=accepted.price * accepted.rows,
                               balance=accepted.balance)
        if key:
            keys.remember(user, "batch", key, digest, result.model_dump(mode="json"))
    return result


def _batch_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(422, "Malformed request", "batch_id: must be a UUID") from None


@router.get("/predict/batch/{batch_id}", response_model=BatchPublic)
async def progress(batch_id: str, user: CurrentUser, reads: ReadSide) -> BatchPublic:
    """A batch's progress: rows done, failed (and refunded) and still pending."""
    row = await reads.batch(user, _batch_id(batch_id), until_projected=True)
    if row is None:
        raise BatchNotFound(batch_id)
    return public(row)


RESULT_COLUMNS = ["row", *FEATURES, "price", "low", "high", "status", "error", "job_id"]


@router.get("/predict/batch/{batch_id}/results.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {"example": ",".join(RESULT_COLUMNS) + "\n"}},
          "description": "one line per input row, in input order: its features, then the "
                         "price with its 80 % range (empty while pending or when failed)"}})
async def results(batch_id: str, user: CurrentUser, reads: ReadSide) -> Response:
    """The batch's rows with their prices, ranges, statuses and errors (CSV)."""
    found = _batch_id(batch_id)
    if await reads.batch(user, found) is None:
        raise BatchNotFound(batch_id)
    rows = await reads.batch_rows(user, found)
    text = csv_text(RESULT_COLUMNS, (
        [r.batch_row, *(r.features.get(f, "") for f in FEATURES),
         "" if r.result is None else r.result, (r.interval or {}).get("low", ""),
         (r.interval or {}).get("high", ""), r.status, r.error or "", r.job_id] for r in rows))
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="batch-{found}.csv"'})
