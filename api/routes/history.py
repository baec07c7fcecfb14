"""Your jobs: the whole history (paginated) and the ones still running."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CurrentUser, ReadSide
from api.errors import ApiError
from api.routes.batch import public as batch_public
from api.routes.predict import public_job
from api.schemas import HistoryPublic, JobPublic, RunningPublic
from projections import queries

router = APIRouter(tags=["predictions"])


def _cursor(row: queries.JobRow) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.job_id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        when, job = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), UUID(job)
    except (ValueError, UnicodeError):
        raise ApiError(422, "Invalid cursor", "cursor is not one this API returned") from None


@router.get("/history", response_model=HistoryPublic)
async def history(user: CurrentUser, reads: ReadSide,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  cursor: Annotated[str | None, Query(max_length=200)] = None) -> HistoryPublic:
    """All your job ids (old clients), a page of full jobs, newest first, and your fleet
    batches (one entry each)."""
    before = _parse_cursor(cursor) if cursor else None
    rows, ids, stale = await reads.history(user, limit + 1, before)
    page, more = rows[:limit], len(rows) > limit
    fleets = [] if before else [batch_public(b) for b in await reads.batches(user)]
    return HistoryPublic(job_ids=ids, jobs=[public_job(r) for r in page],
                         next_cursor=_cursor(page[-1]) if more else None, stale=stale,
                         batches=fleets)


@router.get("/jobs/running", response_model=RunningPublic)
async def running(user: CurrentUser, reads: ReadSide) -> RunningPublic:
    """Your jobs that are queued or started."""
    rows, stale = await reads.running(user)
    return RunningPublic(stale=stale, jobs=[
        JobPublic(job_id=r.job_id, status=r.status, model_name=r.model_name,
                  model_version=r.model_version, price=r.price, created_at=r.created_at,
                  started_at=r.started_at, finished_at=None, result=None, deadline=r.deadline)
        for r in rows])
