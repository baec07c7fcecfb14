"""`prediction_history` (every job) and `running_jobs` (the unfinished ones), kept together."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

import domain.events as ev
from infra.published import PublishedEvent
from projections.encoding import pg_json, pg_text
from projections.projection import Applied, Handler, Projection, guarded, table


def _version(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> int | None:
    row = conn.execute(sql.SQL("SELECT version FROM {} WHERE job_id = %s").format(
        table("prediction_history", s)), (e.aggregate_id,)).fetchone()
    return int(row[0]) if row else None


def _deadline(e: PublishedEvent) -> datetime | None:
    raw = e.data.get("deadline")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _live(e: PublishedEvent, s: str) -> bool:
    """Whether a status change is news: one row of job_updates per change applied live (SSE,
    webhooks), selected from the row the statement changed. A rebuild (a suffix) or a repair
    (events read by aggregate: no position) is not news: nothing."""
    return not s and bool(e.position)


def _requested(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    # One statement: the history row, and (only when that row is new, and the job is not a
    # fleet row: its batch shows the progress) its running job and its job update.
    d = e.data
    batch_id, batch_row = _batch_of(d)
    solo = batch_id is None
    inserted = conn.execute(sql.SQL(
        "WITH new AS (INSERT INTO {h} (job_id, user_id, model_name, model_version, price, status, "
        "features, created_at, deadline, version, explain, batch_id, batch_row) VALUES (%s, %s, %s, "
        "%s, %s, 'queued', %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING "
        "RETURNING job_id, user_id, model_name, model_version, price, created_at, deadline), "
        "running AS (INSERT INTO {r} (job_id, user_id, model_name, model_version, price, status, "
        "created_at, deadline) SELECT job_id, user_id, model_name, model_version, price, 'queued', "
        "created_at, deadline FROM new WHERE %s ON CONFLICT (job_id) DO NOTHING), "
        "noted AS (INSERT INTO job_updates (position, user_id, job_id, status, model_name, price, "
        "result, error, created_at, finished_at, deadline, interval) "
        "SELECT %s, user_id, job_id, 'queued', model_name, price, NULL, "
        "NULL, created_at, NULL, deadline, NULL FROM new WHERE %s ON CONFLICT (position) DO NOTHING) "
        "SELECT count(*) FROM new").format(h=table("prediction_history", s), r=table("running_jobs", s)),
        (e.aggregate_id, e.user_id, pg_text(str(d.get("model_name", ""))),
         pg_text(str(d.get("model_version", ""))), int(d.get("price", 0)),
         pg_json(d.get("features", {})), e.timestamp, _deadline(e), e.aggregate_version,
         d.get("explain") is True, batch_id, batch_row, solo, e.position or 0,
         solo and _live(e, s))).fetchone()
    return Applied.APPLIED if inserted and inserted[0] else Applied.DUPLICATE


def _batch_of(d: dict[str, Any]) -> tuple[UUID | None, int | None]:
    try:
        raw, row = d.get("batch_id"), d.get("batch_row")
        return (UUID(str(raw)), int(row)) if raw is not None and row is not None else (None, None)
    except (ValueError, TypeError):
        return None, None


def _submitted(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    d = e.data
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (batch_id, user_id, model_name, model_version, price, rows, source, "
        "created_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (batch_id) DO NOTHING RETURNING 1").format(table("batches", s)),
        (e.aggregate_id, e.user_id, pg_text(str(d.get("model_name", ""))),
         pg_text(str(d.get("model_version", ""))), int(d.get("price", 0)), int(d.get("rows", 0)),
         pg_text(str(d.get("source", ""))), e.timestamp, e.aggregate_version)).fetchone()
    return Applied.APPLIED if inserted else Applied.DUPLICATE


def _count_in_batch(conn: psycopg.Connection[TupleRow], s: str, batch_id: UUID, status: str,
                    at: datetime) -> None:
    """One more row of the batch ended (the caller applied that row's end exactly once). A
    repair (events read by aggregate, no position) counts the rows again instead."""
    if status == "recount":
        conn.execute(sql.SQL(
            "UPDATE {b} SET done = c.done, failed = c.failed FROM (SELECT count(*) FILTER (WHERE "
            "status = 'finished') AS done, count(*) FILTER (WHERE status = 'failed') AS failed "
            "FROM {h} WHERE batch_id = %s) c WHERE batch_id = %s").format(
                b=table("batches", s), h=table("prediction_history", s)), (batch_id, batch_id))
        return
    finished = 1 if status == "finished" else 0
    conn.execute(sql.SQL(
        "UPDATE {} SET done = done + %s, failed = failed + %s, finished_at = CASE WHEN "
        "done + failed + 1 >= rows THEN %s ELSE finished_at END WHERE batch_id = %s"
    ).format(table("batches", s)), (finished, 1 - finished, at, batch_id))


def _interval(raw: object) -> Jsonb | None:
    """The range as stored: {"low", "high", "level"} of finite numbers, or nothing."""
    if not isinstance(raw, dict):
        return None
    values = {k: raw.get(k) for k in ("low", "high", "level")}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in values.values()):
        return None
    return pg_json(values)


def _ended(status: str) -> Handler:
    def apply(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
        result = e.data.get("result")
        result = result if isinstance(result, int | float) else None
        error = pg_text(e.data.get("reason") or (
            f"explanation failed (its surcharge was refunded): {e.data['explain_error']}"
            if e.data.get("explain_error") else None))
        interval = _interval(e.data.get("interval"))
        explanation = e.data.get("explanation")
        # One statement: the history row at the previous version, and (a job of its own, not a
        # fleet row) its running job gone and its job update noted.
        updated = conn.execute(sql.SQL(
            "WITH ended AS (UPDATE {h} SET status = %s, result = %s, error = %s, finished_at = %s, "
            "model_version = COALESCE(%s, model_version), version = %s, interval = %s, "
            "explanation = %s WHERE job_id = %s AND version = %s "
            "RETURNING job_id, user_id, model_name, price, created_at, deadline, batch_id, "
            "finished_at, result, error, interval), "
            "gone AS (DELETE FROM {r} WHERE job_id IN (SELECT job_id FROM ended WHERE batch_id "
            "IS NULL)), "
            "noted AS (INSERT INTO job_updates (position, user_id, job_id, status, model_name, price, "
            "result, error, created_at, finished_at, deadline, interval) "
            "SELECT %s, user_id, job_id, %s, model_name, price, result, "
            "error, created_at, finished_at, deadline, interval FROM ended WHERE batch_id IS NULL "
            "AND %s ON CONFLICT (position) DO NOTHING) "
            "SELECT batch_id FROM ended"
        ).format(h=table("prediction_history", s), r=table("running_jobs", s)),
            (status, result, error, e.timestamp, pg_text(e.data.get("model_version")),
             e.aggregate_version, interval, pg_json(explanation) if isinstance(explanation, dict)
             else None, e.aggregate_id, e.aggregate_version - 1, e.position or 0, status,
             _live(e, s))).fetchone()
        if updated and updated[0] is not None:
            _count_in_batch(conn, s, updated[0], status if s or e.position else "recount",
                            e.timestamp)
        return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)
    return apply


def _sale_reported(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    """The latest sale price on the job's row (a correction is a later version: it wins)."""
    sold = e.data.get("sold_price")
    sold = float(sold) if isinstance(sold, int | float) and not isinstance(sold, bool) \
        and math.isfinite(sold) else None
    updated = conn.execute(sql.SQL(
        "UPDATE {} SET sold_price = %s, sold_at = %s, version = %s WHERE job_id = %s AND version = %s "
        "RETURNING 1").format(table("prediction_history", s)),
        (sold, e.timestamp, e.aggregate_version, e.aggregate_id, e.aggregate_version - 1)).fetchone()
    return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)


def _forget(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> None:
    for name in ("prediction_history", "running_jobs"):  # a batch row: its count stays
        conn.execute(sql.SQL("DELETE FROM {} WHERE job_id = %s").format(table(name, s)),
                     (e.aggregate_id,))


JOBS = Projection(
    name="jobs",
    tables=("prediction_history", "running_jobs", "batches"),
    handlers={
        ev.BATCH_SUBMITTED: _submitted,
        ev.JOB_REQUESTED: _requested,
        ev.JOB_COMPLETED: _ended("finished"),
        ev.JOB_FAILED: _ended("failed"),
        ev.JOB_SALE_REPORTED: _sale_reported,
    },
    forget=_forget,
)
