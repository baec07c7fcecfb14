"""`prediction_history` (every job) and `running_jobs` (the unfinished ones), kept together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
                 row: tuple[Any, ...], result: Any = None, error: Any = None) -> None:
    """One row of job_updates per status change applied live (SSE, webhooks). A rebuild (a
    suffix) or a repair (events read by aggregate: no position) is not news: nothing."""
    if s or not e.position:
        return
    model_name, price, created_at, deadline = row
    conn.execute(
        "INSERT INTO job_updates (position, user_id, job_id, status, model_name, price, result, error, "
        "created_at, finished_at, deadline) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (position) DO NOTHING",
        (e.position, e.user_id, e.aggregate_id, status, model_name, price, result, error, created_at,
         e.timestamp if status in ("finished", "failed") else None, deadline))


def _requested(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
    d = e.data
    values = (e.aggregate_id, e.user_id, pg_text(str(d.get("model_name", ""))),
              pg_text(str(d.get("model_version", ""))), int(d.get("price", 0)))
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, features, "
        "created_at, deadline, version) VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s) "
        "ON CONFLICT (job_id) DO NOTHING RETURNING 1").format(table("prediction_history", s)),
        (*values, pg_json(d.get("features", {})), e.timestamp, _deadline(e),
         e.aggregate_version)).fetchone()
    if not inserted:
        return Applied.DUPLICATE
    # only a first delivery may open a running job
    conn.execute(sql.SQL(
        "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, created_at, "
        "deadline) VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s) ON CONFLICT (job_id) DO NOTHING"
    ).format(table("running_jobs", s)), (*values, e.timestamp, _deadline(e)))
    _note_update(conn, e, s, "queued", (values[2], values[4], e.timestamp, _deadline(e)))
    return Applied.APPLIED


def _ended(status: str) -> Handler:
    def apply(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
        result = e.data.get("result")
        result = result if isinstance(result, int | float) else None
        error = pg_text(e.data.get("reason"))
        updated = conn.execute(sql.SQL(
            "UPDATE {} SET status = %s, result = %s, error = %s, finished_at = %s, "
            "model_version = COALESCE(%s, model_version), version = %s "
            "WHERE job_id = %s AND version = %s RETURNING model_name, price, created_at, deadline"
        ).format(table("prediction_history", s)),
            (status, result, error, e.timestamp, pg_text(e.data.get("model_version")),
             e.aggregate_version, e.aggregate_id, e.aggregate_version - 1)).fetchone()
        if updated:
            conn.execute(sql.SQL("DELETE FROM {} WHERE job_id = %s").format(table("running_jobs", s)),
                         (e.aggregate_id,))
            _note_update(conn, e, s, status, tuple(updated), result, error)
        return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)
    return apply


def _forget(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
    for name in ("prediction_history", "running_jobs"):
        conn.execute(sql.SQL("DELETE FROM {} WHERE job_id = %s").format(table(name, s)),
                     (e.aggregate_id,))


JOBS = Projection(
    name="jobs",
    tables=("prediction_history", "running_jobs"),
    handlers={
        ev.JOB_REQUESTED: _requested,
        ev.JOB_COMPLETED: _ended("finished"),
        ev.JOB_FAILED: _ended("failed"),
    },
    forget=_forget,
)
