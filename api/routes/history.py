"""Your jobs: the whole history (paginated) and the ones still running."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.consistency import fresh, store_version
from api.deps import Commands, CurrentUser, ReadDb
from api.errors import ApiError
from api.routes.predict import _public
from api.schemas import HistoryPublic, JobPublic, RunningPublic
from domain.ids import wallet_id_for
from projections import queries


def _caught_up(db: ReadDb, commands: Commands, user: UUID) -> None:
    # Jobs are charged to the wallet in the same transaction, and the projector applies
    # the user's events in order: a balance row at the wallet's version means every job
    # the user submitted so far is in the read tables too.
    fresh(lambda: queries.balance(db, user), store_version(commands, wallet_id_for(user)))

router = APIRouter(tags=["predictions"])


def _cursor(row: queries.JobRow) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at.isoformat()}|{row.job_id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        when, job = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), UUID(job)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "Invalid cursor", "cursor is not one this API returned") from None


@router.get("/history", response_model=HistoryPublic)
def history(user: CurrentUser, db: ReadDb, commands: Commands,
            limit: Annotated[int, Query(ge=1, le=500)] = 50,
            cursor: Annotated[str | None, Query(max_length=200)] = None) -> HistoryPublic:
    """All your job ids (old clients), and a page of full jobs, newest first."""
    _caught_up(db, commands, user)
    rows = queries.history(db, user, limit + 1, _parse_cursor(cursor) if cursor else None)
    page, more = rows[:limit], len(rows) > limit
    return HistoryPublic(job_ids=queries.job_ids(db, user), jobs=[_public(r) for r in page],
                         next_cursor=_cursor(page[-1]) if more else None)


@router.get("/jobs/running", response_model=RunningPublic)
def running(user: CurrentUser, db: ReadDb, commands: Commands) -> RunningPublic:
    """Your jobs that are queued or started."""
    _caught_up(db, commands, user)
    rows = queries.running(db, user)
    return RunningPublic(jobs=[
        JobPublic(job_id=r.job_id, status=r.status, model_name=r.model_name,
                  model_version=r.model_version, price=r.price, created_at=r.created_at,
                  started_at=r.started_at, finished_at=None, result=None) for r in rows])
