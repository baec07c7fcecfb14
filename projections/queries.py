"""The read functions the API calls: plain SQL over the read tables, typed rows, async."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow, class_row

from domain.features import Car

Conn = psycopg.AsyncConnection[TupleRow]


@dataclass
class BalanceRow:
    """A user's projected balance and the wallet version it reflects."""

    user_id: UUID
    balance: int  # available: what can be spent
    version: int
    updated_at: datetime
    reserved: int = 0  # held for jobs not ended
    promotional: int = 0  # the part of balance from grants


@dataclass
class JobRow:
    """One job in the prediction history."""

    job_id: UUID
    user_id: UUID
    model_name: str
    model_version: str
    price: int
    status: str
    features: Car
    result: float | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    version: int
    interval: dict[str, float] | None = None
    explanation: dict[str, Any] | None = None
    explain: bool = False


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
    deadline: datetime | None


JOB_COLUMNS = ("job_id, user_id, model_name, model_version, price, status, features, result, error, "
               "created_at, started_at, finished_at, deadline, version, interval, explanation, "
               "explain")


async def balance(conn: Conn, user_id: UUID) -> BalanceRow | None:
    """The projected balance of a user."""
    async with conn.cursor(row_factory=class_row(BalanceRow)) as cur:
        await cur.execute("SELECT user_id, balance, version, updated_at, reserved, promotional "
                          "FROM balances "
                          "WHERE user_id = %s", (user_id,))
        return await cur.fetchone()


async def job(conn: Conn, user_id: UUID, job_id: UUID) -> JobRow | None:
    """One of the user's jobs (None for another user's job: it does not exist for them)."""
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(f"SELECT {JOB_COLUMNS} FROM prediction_history "  # noqa: S608 - constant
                          "WHERE job_id = %s AND user_id = %s", (job_id, user_id))
        return await cur.fetchone()


async def history(conn: Conn, user_id: UUID, limit: int,
                  before: tuple[datetime, UUID] | None = None) -> list[JobRow]:
    """The user's jobs, newest first, a page at a time (keyset pagination)."""
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        if before is None:
            await cur.execute(f"SELECT {JOB_COLUMNS} FROM prediction_history "  # noqa: S608
                              "WHERE user_id = %s AND batch_id IS NULL "
                              "ORDER BY created_at DESC, job_id DESC LIMIT %s",
                              (user_id, limit))
        else:
            await cur.execute(f"SELECT {JOB_COLUMNS} FROM prediction_history "  # noqa: S608
                              "WHERE user_id = %s AND batch_id IS NULL AND (created_at, job_id) < "
                              "(%s, %s) ORDER BY created_at DESC, job_id DESC LIMIT %s",
                              (user_id, before[0], before[1], limit))
        return await cur.fetchall()


async def job_ids(conn: Conn, user_id: UUID) -> list[UUID]:
    """Every single job id of the user, newest first (what old clients list; a fleet batch's
    rows are listed with their batch)."""
    cur = await conn.execute("SELECT job_id FROM prediction_history WHERE user_id = %s AND "
                             "batch_id IS NULL ORDER BY created_at DESC, job_id DESC", (user_id,))
    return [r[0] for r in await cur.fetchall()]


async def running(conn: Conn, user_id: UUID) -> list[RunningRow]:
    """The user's queued and started jobs, oldest first."""
    async with conn.cursor(row_factory=class_row(RunningRow)) as cur:
        await cur.execute("SELECT job_id, model_name, model_version, price, status, created_at, "
                          "started_at, deadline FROM running_jobs WHERE user_id = %s "
                          "ORDER BY created_at, job_id", (user_id,))
        return await cur.fetchall()


@dataclass
class JobUpdateRow:
    """One status change of a job, with the store position of its event (the SSE event id)."""

    position: int
    job_id: UUID
    status: str
    model_name: str
    price: int
    result: float | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    deadline: datetime | None
    interval: dict[str, float] | None = None


async def job_updates(conn: Conn, user_id: UUID, after: int, limit: int = 500) -> list[JobUpdateRow]:
    """The user's job status changes after store position `after`, oldest first."""
    async with conn.cursor(row_factory=class_row(JobUpdateRow)) as cur:
        await cur.execute("SELECT position, job_id, status, model_name, price, result, error, "
                          "created_at, finished_at, deadline, interval FROM job_updates "
                          "WHERE user_id = %s AND position > %s ORDER BY position LIMIT %s",
                          (user_id, after, limit))
        return await cur.fetchall()


async def last_job_update(conn: Conn, user_id: UUID) -> int:
    """The position of the user's newest job update (0 when none): where a new stream starts."""
    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM job_updates WHERE user_id = %s",
                             (user_id,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass
class BatchRow:
    """A fleet batch and its progress."""

    batch_id: UUID
    model_name: str
    model_version: str
    price: int
    rows: int
    done: int
    failed: int
    source: str
    created_at: datetime
    finished_at: datetime | None


BATCH_COLUMNS = ("batch_id, model_name, model_version, price, rows, done, failed, source, "
                 "created_at, finished_at")


async def batch(conn: Conn, user_id: UUID, batch_id: UUID) -> BatchRow | None:
    """One of the user's batches."""
    async with conn.cursor(row_factory=class_row(BatchRow)) as cur:
        await cur.execute(f"SELECT {BATCH_COLUMNS} FROM batches "  # noqa: S608 - constant
                          "WHERE batch_id = %s AND user_id = %s", (batch_id, user_id))
        return await cur.fetchone()


async def batches(conn: Conn, user_id: UUID, limit: int = 100) -> list[BatchRow]:
    """The user's batches, newest first."""
    async with conn.cursor(row_factory=class_row(BatchRow)) as cur:
        await cur.execute(f"SELECT {BATCH_COLUMNS} FROM batches "  # noqa: S608 - constant
                          "WHERE user_id = %s ORDER BY created_at DESC LIMIT %s", (user_id, limit))
        return await cur.fetchall()


@dataclass
class BatchResultRow:
    """One row of a batch: its input and outcome."""

    batch_row: int
    job_id: UUID
    status: str
    features: Car
    result: float | None
    interval: dict[str, float] | None
    error: str | None


async def batch_rows(conn: Conn, user_id: UUID, batch_id: UUID) -> list[BatchResultRow]:
    """Every row of one of the user's batches, in input order."""
    async with conn.cursor(row_factory=class_row(BatchResultRow)) as cur:
        await cur.execute("SELECT batch_row, job_id, status, features, result, interval, error "
                          "FROM prediction_history WHERE batch_id = %s AND user_id = %s "
                          "ORDER BY batch_row", (batch_id, user_id))
        return await cur.fetchall()


@dataclass
class LiveRow:
    """How one model version priced the cars whose sale prices came back (every user's)."""

    model_version: str
    reports: int  # finished jobs with a sale price
    mae: float | None  # mean absolute error, in dollars
    mae_sd: float | None  # the standard deviation of the absolute errors
    mape: float | None  # mean absolute percentage error (0.1 = 10 %)
    mape_sd: float | None
    ranged: int  # of the reports, those with a range
    covered: int  # of those, the sale prices inside the range


async def live(conn: Conn, model_name: str) -> list[LiveRow]:
    """Per version of a model: its errors against the reported sale prices (the latest report
    of each finished job)."""
    async with conn.cursor(row_factory=class_row(LiveRow)) as cur:
        await cur.execute(
            "SELECT model_version, count(*)::int AS reports, "
            "avg(abs(result - sold_price)) AS mae, stddev_samp(abs(result - sold_price)) AS mae_sd, "
            "avg(abs(result - sold_price) / sold_price) AS mape, "
            "stddev_samp(abs(result - sold_price) / sold_price) AS mape_sd, "
            "count(interval)::int AS ranged, count(*) FILTER (WHERE interval IS NOT NULL AND "
            "sold_price BETWEEN (interval->>'low')::float AND (interval->>'high')::float)::int AS covered "
            "FROM prediction_history WHERE model_name = %s AND status = 'finished' "
            "AND sold_price IS NOT NULL AND result IS NOT NULL "
            "GROUP BY model_version ORDER BY model_version", (model_name,))
        return await cur.fetchall()


@dataclass
class ShadowRow:
    """A challenger against the version that priced (and billed) the same jobs."""

    version: str  # the challenger
    champion_version: str
    shadowed: int  # jobs it priced in the shadow
    failed: int  # of those, the ones it could not price
    median_abs_difference: float | None  # |its price - the champion's|, dollars
    median_difference: float | None  # its price - the champion's (above 0: it asks more)
    reports: int  # of the shadowed jobs, those whose sale price came back
    mae: float | None
    mae_sd: float | None
    champion_mae: float | None
    champion_mae_sd: float | None
    ranged: int
    covered: int
    champion_ranged: int
    champion_covered: int


async def challengers(conn: Conn, model_name: str) -> list[ShadowRow]:
    """Per challenger of a model and the version it was compared with: the shadow prices
    against the paid ones on the same cars, and both against the sale prices reported."""
    sold = "h.sold_price IS NOT NULL AND s.price IS NOT NULL"
    async with conn.cursor(row_factory=class_row(ShadowRow)) as cur:
        await cur.execute(
            "SELECT s.version, s.champion_version, count(*)::int AS shadowed, "  # noqa: S608 - constants
            "count(*) FILTER (WHERE s.price IS NULL)::int AS failed, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(s.price - s.champion_price)) "
            "AS median_abs_difference, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY s.price - s.champion_price) AS median_difference, "
            f"count(*) FILTER (WHERE {sold})::int AS reports, "
            f"avg(abs(s.price - h.sold_price)) FILTER (WHERE {sold}) AS mae, "
            f"stddev_samp(abs(s.price - h.sold_price)) FILTER (WHERE {sold}) AS mae_sd, "
            f"avg(abs(s.champion_price - h.sold_price)) FILTER (WHERE {sold}) AS champion_mae, "
            f"stddev_samp(abs(s.champion_price - h.sold_price)) FILTER (WHERE {sold}) AS champion_mae_sd, "
            f"count(*) FILTER (WHERE {sold} AND s.low IS NOT NULL)::int AS ranged, "
            f"count(*) FILTER (WHERE {sold} AND h.sold_price BETWEEN s.low AND s.high)::int AS covered, "
            f"count(*) FILTER (WHERE {sold} AND h.interval IS NOT NULL)::int AS champion_ranged, "
            f"count(*) FILTER (WHERE {sold} AND h.sold_price BETWEEN (h.interval->>'low')::float "
            "AND (h.interval->>'high')::float)::int AS champion_covered "
            "FROM shadow_prices s LEFT JOIN prediction_history h "
            "ON h.job_id = s.job_id AND h.status = 'finished' "
            "WHERE s.model_name = %s GROUP BY s.version, s.champion_version "
            "ORDER BY s.version::int, s.champion_version::int", (model_name,))
        return await cur.fetchall()
