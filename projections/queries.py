"""The read functions the API calls: plain SQL over the read tables, typed rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row


@dataclass
class BalanceRow:
    """A user's projected balance and the wallet version it reflects."""

    user_id: UUID
    balance: int
    version: int
    updated_at: datetime


@dataclass
class JobRow:
    """One job in the prediction history."""

    job_id: UUID
    user_id: UUID
    model_name: str
    model_version: str
    price: int
    status: str
    features: dict[str, Any]
    result: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int


@dataclass
class RunningRow:
    """A job still queued or started."""

    job_id: UUID
    model_name: str
    model_version: str
    price: int
    status: str
    created_at: datetime
    started_at: datetime | None


def balance(conn: psycopg.Connection[Any], user_id: UUID) -> BalanceRow | None:
    """The projected balance of a user."""
    with conn.cursor(row_factory=class_row(BalanceRow)) as cur:
        return cur.execute("SELECT user_id, balance, version, updated_at FROM balances "
                           "WHERE user_id = %s", (user_id,)).fetchone()


def job(conn: psycopg.Connection[Any], user_id: UUID, job_id: UUID) -> JobRow | None:
    """One of the user's jobs (None for another user's job: it does not exist for them)."""
    with conn.cursor(row_factory=class_row(JobRow)) as cur:
        return cur.execute("SELECT * FROM prediction_history WHERE job_id = %s AND user_id = %s",
                           (job_id, user_id)).fetchone()


def history(conn: psycopg.Connection[Any], user_id: UUID, limit: int,
            before: tuple[datetime, UUID] | None = None) -> list[JobRow]:
    """The user's jobs, newest first, a page at a time (keyset pagination)."""
    with conn.cursor(row_factory=class_row(JobRow)) as cur:
        if before is None:
            return cur.execute("SELECT * FROM prediction_history WHERE user_id = %s "
                               "ORDER BY created_at DESC, job_id DESC LIMIT %s",
                               (user_id, limit)).fetchall()
        return cur.execute("SELECT * FROM prediction_history WHERE user_id = %s AND "
                           "(created_at, job_id) < (%s, %s) ORDER BY created_at DESC, job_id DESC "
                           "LIMIT %s", (user_id, before[0], before[1], limit)).fetchall()


def job_ids(conn: psycopg.Connection[Any], user_id: UUID) -> list[UUID]:
    """Every job id of the user, newest first (what old clients list)."""
    rows = conn.execute("SELECT job_id FROM prediction_history WHERE user_id = %s "
                        "ORDER BY created_at DESC, job_id DESC", (user_id,)).fetchall()
    return [r[0] for r in rows]


def running(conn: psycopg.Connection[Any], user_id: UUID) -> list[RunningRow]:
    """The user's queued and started jobs, oldest first."""
    with conn.cursor(row_factory=class_row(RunningRow)) as cur:
        return cur.execute("SELECT job_id, model_name, model_version, price, status, created_at, "
                           "started_at FROM running_jobs WHERE user_id = %s "
                           "ORDER BY created_at, job_id", (user_id,)).fetchall()


def projection_positions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Each projection's position in the event store's log."""
    return {n: int(p) for n, p in conn.execute("SELECT name, position FROM projection_state")}
