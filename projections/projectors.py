"""Projections: published events into read tables, idempotently.

Every statement is guarded by the aggregate version the row reflects, so an
event delivered twice (a consumer redelivery, or a relay that republished after
a crash) changes nothing the second time. Events of one user arrive in order
(one Kafka partition per user), so versions only grow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

import domain.events as ev
from infra.published import PublishedEvent

Handler = Callable[[psycopg.Connection[Any], PublishedEvent, str], None]


def _t(name: str, suffix: str) -> sql.Identifier:
    return sql.Identifier(f"{name}{suffix}")


# -- balances ------------------------------------------------------------------


def _wallet_opened(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
    conn.execute(sql.SQL(
        "INSERT INTO {} (user_id, balance, version, updated_at) VALUES (%s, 0, %s, %s) "
        "ON CONFLICT (user_id) DO NOTHING").format(_t("balances", s)),
        (e.user_id, e.aggregate_version, e.timestamp))


def _wallet_change(sign: int) -> Handler:
    def apply(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
        conn.execute(sql.SQL(
            "UPDATE {} SET balance = balance + %s, version = %s, updated_at = %s "
            "WHERE user_id = %s AND version < %s").format(_t("balances", s)),
            (sign * int(e.data["amount"]), e.aggregate_version, e.timestamp, e.user_id,
             e.aggregate_version))
    return apply


# -- jobs: prediction_history and running_jobs, kept together ------------------


def _job_requested(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
    d = e.data
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, features, "
        "created_at, version) VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s) "
        "ON CONFLICT (job_id) DO NOTHING RETURNING job_id").format(_t("prediction_history", s)),
        (e.aggregate_id, e.user_id, d["model_name"], d["model_version"], d["price"],
         json.dumps(d["features"]), e.timestamp, e.aggregate_version)).fetchone()
    if inserted:  # only a first delivery may open a running job
        conn.execute(sql.SQL(
            "INSERT INTO {} (job_id, user_id, model_name, model_version, price, status, created_at) "
            "VALUES (%s, %s, %s, %s, %s, 'queued', %s) ON CONFLICT (job_id) DO NOTHING"
        ).format(_t("running_jobs", s)),
            (e.aggregate_id, e.user_id, d["model_name"], d["model_version"], d["price"],
             e.timestamp))


def _job_started(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
    updated = conn.execute(sql.SQL(
        "UPDATE {} SET status = 'started', started_at = %s, version = %s "
        "WHERE job_id = %s AND version < %s AND status = 'queued' RETURNING job_id"
    ).format(_t("prediction_history", s)),
        (e.timestamp, e.aggregate_version, e.aggregate_id, e.aggregate_version)).fetchone()
    if updated:
        conn.execute(sql.SQL(
            "UPDATE {} SET status = 'started', started_at = %s WHERE job_id = %s"
        ).format(_t("running_jobs", s)), (e.timestamp, e.aggregate_id))


def _job_ended(status: str) -> Handler:
    def apply(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
        result = e.data.get("result")
        error = e.data.get("reason")
        conn.execute(sql.SQL(
            "UPDATE {} SET status = %s, result = %s, error = %s, finished_at = %s, "
            "model_version = COALESCE(%s, model_version), version = %s "
            "WHERE job_id = %s AND version < %s").format(_t("prediction_history", s)),
            (status, result, error, e.timestamp, e.data.get("model_version"),
             e.aggregate_version, e.aggregate_id, e.aggregate_version))
        conn.execute(sql.SQL("DELETE FROM {} WHERE job_id = %s").format(_t("running_jobs", s)),
                     (e.aggregate_id,))
    return apply


# name -> (its tables, its handlers by event type)
PROJECTIONS: dict[str, tuple[tuple[str, ...], dict[str, Handler]]] = {
    "balances": (("balances",), {
        ev.WALLET_OPENED: _wallet_opened,
        ev.WALLET_DEPOSITED: _wallet_change(+1),
        ev.WALLET_REFUNDED: _wallet_change(+1),
        ev.WALLET_CHARGED: _wallet_change(-1),
    }),
    "jobs": (("prediction_history", "running_jobs"), {
        ev.JOB_REQUESTED: _job_requested,
        ev.JOB_STARTED: _job_started,
        ev.JOB_COMPLETED: _job_ended("finished"),
        ev.JOB_FAILED: _job_ended("failed"),
    }),
}


def apply_events(conn: psycopg.Connection[Any], events: Iterable[PublishedEvent],
                 names: Iterable[str] = tuple(PROJECTIONS), suffix: str = "") -> int:
    """Apply events to the named projections (the caller owns the transaction)."""
    selected = [(n, PROJECTIONS[n][1]) for n in names]
    top: dict[str, int] = {}
    count = 0
    for event in events:
        for name, handlers in selected:
            handler = handlers.get(event.type)
            if handler is not None:
                handler(conn, event, suffix)
                count += 1
            top[name] = max(top.get(name, 0), event.position)
    for name, position in top.items():
        conn.execute(
            "INSERT INTO projection_state (name, position, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (name) DO UPDATE SET position = GREATEST(projection_state.position, "
            "EXCLUDED.position), updated_at = now()", (name + suffix, position))
    return count
