"""Your jobs: the whole history (paginated) and the ones still running."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CurrentUser, ReadSide
from api.errors import ApiError
from api.reads import Reads
from api.routes.predict import public_job
from api.schemas import HistoryPublic, JobPublic, RunningPublic
from domain.ids import wallet_id_for
from projections import queries

router = APIRouter(tags=["predictions"])


async def _caught_up(reads: Reads, user: UUID) -> bool:
    """Wait (bounded) until the read tables show every job the user submitted; False if stale.

    Jobs are charged to the wallet in the same transaction, and the projector applies the
    user's events in order: a balance row at the wallet's version means every job the user
    submitted so far is in the read tables too.
    """
    target = await reads.version(wallet_id_for(user))
    _, stale = await reads.fresh(user, lambda conn: queries.balance(conn, user), target)
    return not stale


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
    """All your job ids (old clients), and a page of full jobs, newest first."""
    before = _parse_cursor(cursor) if cursor else None
    fresh = await _caught_up(reads, user)
    rows = await reads.run(lambda conn: queries.history(conn, user, limit + 1, before))
    ids = await reads.run(lambda conn: queries.job_ids(conn, user))
    page, more = rows[:limit], len(rows) > limit
    return HistoryPublic(job_ids=ids, jobs=[public_job(r) for r in page],
                         next_cursor=_cursor(page[-1]) if more else None, stale=not fresh)


@router.get("/jobs/running", response_model=RunningPublic)
async def running(user: CurrentUser, reads: ReadSide) -> RunningPublic:
    """Your jobs that are queued or started."""
    fresh = await _caught_up(reads, user)
    rows = await reads.run(lambda conn: queries.running(conn, user))
    return RunningPublic(stale=not fresh, jobs=[
        JobPublic(job_id=r.job_id, status=r.status, model_name=r.model_name,
                  model_version=r.model_version, price=r.price, created_at=r.created_at,
                  started_at=r.started_at, finished_at=None, result=None, deadline=r.deadline)
        for r in rows])
