"""Push: your job updates as server-sent events (text/event-stream)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import CurrentCaller, ReadSide
from api.errors import ApiError
from api.reads import PermitEnded
from projections import queries

router = APIRouter(tags=["predictions"])
PING_SECONDS = 15

EXAMPLE_STREAM = (
    'id: 1042\nevent: job\ndata: {"job_id":"5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11","status":"queued",'
    '"model_name":"linear_regression","price":10,"result":null,"error":null,'
    '"created_at":"2026-12-01T10:00:00Z","finished_at":null,"deadline":"2026-12-01T10:05:00Z"}\n\n'
    'id: 1047\nevent: job\ndata: {"job_id":"5a0c1d9e-0d6b-4f55-a7b2-3c1f7b0e9c11","status":"finished",'
    '"model_name":"linear_regression","price":10,"result":15189.0,"error":null,'
    '"created_at":"2026-12-01T10:00:00Z","finished_at":"2026-12-01T10:00:00.08Z",'
    '"deadline":"2026-12-01T10:05:00Z"}\n\n')


def update_data(row: queries.JobUpdateRow) -> dict[str, Any]:
    """The JSON of one job update (the `data:` of an event; a webhook's `job`)."""
    return {"job_id": str(row.job_id), "status": row.status, "model_name": row.model_name,
            "price": row.price, "result": row.result, "error": row.error,
            "created_at": row.created_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "deadline": row.deadline.isoformat() if row.deadline else None,
            "interval": row.interval}


def _resume_from(header: str | None, query: int | None) -> int | None:
    if query is not None:
        return query
    if header is None or not header.strip():
        return None
    try:
        position = int(header.strip())
    except ValueError:
        raise ApiError(422, "Malformed request", "Last-Event-ID: must be the id of an event of "
                       "this stream (an integer)") from None
    if position < 0:
        raise ApiError(422, "Malformed request", "Last-Event-ID: must not be negative")
    return position


@router.get("/jobs/events", response_class=EventSourceResponse, responses={200: {
    "description": "An endless stream: one `job` event per status change of any of your jobs "
                   "(queued, then finished or failed), its `id` the position to resume after. "
                   f"A comment line every {PING_SECONDS} s keeps idle connections open.",
    "content": {"text/event-stream": {"schema": {"type": "string"}, "example": EXAMPLE_STREAM}}}})
async def job_events(
    caller: CurrentCaller, reads: ReadSide,
    last_event_id: Annotated[str | None, Header(max_length=32, description=(
        "resume after this event (the browser's EventSource sends it when it reconnects)"))] = None,
    after: Annotated[int | None, Query(ge=0, description=(
        "resume after this event id (as Last-Event-ID, for clients that cannot set headers)"))] = None,
) -> EventSourceResponse:
    """Your job updates as they happen, pushed (server-sent events).

    Without `Last-Event-ID` the stream starts with the next update; with it, every update
    after that event is sent first (kept for a day), then the live ones. Nothing polls: the
    stream is woken by the projector's notification."""
    start = _resume_from(last_event_id, after)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for rows in reads.job_updates(caller.user, start, caller):
                for row in rows:
                    yield ServerSentEvent(orjson.dumps(update_data(row)).decode(), event="job",
                                          id=str(row.position))
        except PermitEnded:  # the token expired or the account was erased: the stream ends
            yield ServerSentEvent("sign in again", event="end")

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})
