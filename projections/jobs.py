"""`prediction_history` (every job) and `running_jobs` (the unfinished ones), kept together."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

import domain.events as ev
from infra.published import PublishedEvent
from projections.encoding import pg_json, pg_text
from projections.projection import Applied, Handler, Projection, guarded, table


def _version(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> int | None:
    row = conn.execute(sql.SQL("SELECT version FROM {} WHERE job_id = %s").format(
        table("prediction_history", s)), (e.aggregate_id,)).fetchone()
    return int(row[0]) if row else None


def _deadline(e: PublishedEvent) -> datetime | None:
    raw = e.data.get("deadline")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _note_update(conn: psycopg.Connection[Any], e: PublishedEvent, s: str, status: str,
                 row: tuple[Any, ...], result: Any = None, error: Any = None,
                 interval: Any = None) -> None:
    """One row of job_updates per status change applied live (SSE, webhooks). A rebuild (a
    suffix) or a repair (events read by aggregate: no position) is not news: nothing."""
    if s or not e.position:
        return
    model_name, price, created_at, deadline = row
    conn.execute(
        "INSERT INTO job_updates (position, user_id, job_id, status, model_name, price, result, error, "
        "created_at, finished_at, deadline, interval) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, %s) ON CONFLICT (position) DO NOTHING",
        (e.position, e.user_id, e.aggregate_id, status, model_name, price, result, error, created_at,
         e.timestamp if status in ("finished", "failed") else None, deadline, interval))


def _requested(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
    d = e.data
    values = (e.aggregate_id, e.user_id, pg_text(str(d.get("model_name", ""))),
              pg_text(str(d.get("model_version", ""))), int(d.get("price", 0)))
    batch_id, batch_row = _batch_of(d)
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, features, "
        "created_at, deadline, version, explain, batch_id, batch_row) VALUES (%s, %s, %s, %s, %s, "
        "'queued', %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING RETURNING 1"
    ).format(table("prediction_history", s)),
        (*values, pg_json(d.get("features", {})), e.timestamp, _deadline(e),
         e.aggregate_version, d.get("explain") is True, batch_id, batch_row)).fetchone()
    if not inserted:
        return Applied.DUPLICATE
    if batch_id is not None:
        return Applied.APPLIED  # a fleet row: its batch shows the progress, not running_jobs
    # only a first delivery may open a running job
    conn.execute(sql.SQL(
        "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, created_at, "
        "deadline) VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s) ON CONFLICT (job_id) DO NOTHING"
    ).format(table("running_jobs", s)), (*values, e.timestamp, _deadline(e)))
    _note_update(conn, e, s, "queued", (values[2], values[4], e.timestamp, _deadline(e)))
    return Applied.APPLIED


def _batch_of(d: dict[str, Any]) -> tuple[UUID | None, int | None]:
    try:
        raw, row = d.get("batch_id"), d.get("batch_row")
        return (UUID(str(raw)), int(row)) if raw is not None and row is not None else (None, None)
    except (ValueError, TypeError):
        return None, None


def _submitted(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
    d = e.data
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (batch_id, user_id, model_name, model_version, price, rows, source, "
        "created_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (batch_id) DO NOTHING RETURNING 1").format(table("batches", s)),
        (e.aggregate_id, e.user_id, pg_text(str(d.get("model_name", ""))),
         pg_text(str(d.get("model_version", ""))), int(d.get("price", 0)), int(d.get("rows", 0)),
         pg_text(str(d.get("source", ""))), e.timestamp, e.aggregate_version)).fetchone()
    return Applied.APPLIED if inserted else Applied.DUPLICATE


def _count_in_batch(conn: psycopg.Connection[Any], s: str, batch_id: UUID, status: str,
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


def _interval(raw: Any) -> Any:
    """The range as stored: {"low", "high", "level"} of finite numbers, or nothing."""
    if not isinstance(raw, dict):
        return None
    values = {k: raw.get(k) for k in ("low", "high", "level")}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in values.values()):
        return None
    return pg_json(values)


def _ended(status: str) -> Handler:
    def apply(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
        result = e.data.get("result")
        result = result if isinstance(result, int | float) else None
        error = pg_text(e.data.get("reason") or (
            f"explanation failed (its surcharge was refunded): {e.data['explain_error']}"
            if e.data.get("explain_error") else None))
        interval = _interval(e.data.get("interval"))
        explanation = e.data.get("explanation")
        updated = conn.execute(sql.SQL(
            "UPDATE {} SET status = %s, result = %s, error = %s, finished_at = %s, "
            "model_version = COALESCE(%s, model_version), version = %s, interval = %s, "
            "explanation = %s WHERE job_id = %s AND version = %s "
            "RETURNING model_name, price, created_at, deadline, batch_id"
        ).format(table("prediction_history", s)),
            (status, result, error, e.timestamp, pg_text(e.data.get("model_version")),
             e.aggregate_version, interval, pg_json(explanation) if isinstance(explanation, dict)
             else None, e.aggregate_id, e.aggregate_version - 1)).fetchone()
        if updated and updated[4] is not None:
            _count_in_batch(conn, s, updated[4], status if s or e.position else "recount",
                            e.timestamp)
        elif updated:
            conn.execute(sql.SQL("DELETE FROM {} WHERE job_id = %s").format(table("running_jobs", s)),
                         (e.aggregate_id,))
            _note_update(conn, e, s, status, tuple(updated[:4]), result, error, interval)
        return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)
    return apply


def _forget(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
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
    },
    forget=_forget,
)
