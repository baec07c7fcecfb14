"""Webhooks on the read side: what a batch of the projector has to announce, and the log.

The projector calls enqueue() in the transaction of each live batch, so a delivery exists
exactly when the rows that caused it do: a replay finds its rows there already (nothing new),
a rebuild never calls it. `carprice webhooks` sends what is due (infra/webhook_sender.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import TupleRow, class_row

import domain.events as ev
from infra.published import PublishedEvent

CHANNEL = "carprice_webhooks"  # NOTIFY: deliveries were queued
JOB_ENDED = "job.ended"
BALANCE_LOW = "balance.low"
KEEP_DELIVERIES = "7 days"  # longer than job_updates are kept: a late replay finds its delivery


def enqueue(conn: psycopg.Connection[TupleRow], changed: Iterable[tuple[str, PublishedEvent]]) -> int:
    """Queue the deliveries a live batch causes (same transaction); how many were queued."""
    ended, wallets = [], set()
    for projection, e in changed:
        if projection == "jobs" and e.type in (ev.JOB_COMPLETED, ev.JOB_FAILED) and e.position:
            ended.append(e.position)
        elif projection == "balances":
            wallets.add(e.user_id)
    queued = 0
    if ended:
        queued += conn.execute(
            "INSERT INTO webhook_deliveries (webhook_id, user_id, event, event_key, payload) "
            "SELECT w.webhook_id, u.user_id, %s, 'job:' || u.position, jsonb_build_object("
            "'job_id', u.job_id, 'status', u.status, 'model_name', u.model_name, 'price', u.price, "
            "'result', u.result, 'error', u.error, 'created_at', u.created_at, "
            "'finished_at', u.finished_at, 'position', u.position, 'interval', u.interval) "
            "FROM job_updates u JOIN webhooks w ON w.user_id = u.user_id "
            "WHERE u.position = ANY(%s) AND %s = ANY(w.events) AND u.position > w.after_position "
            "ON CONFLICT (webhook_id, event_key) DO NOTHING", (JOB_ENDED, ended, JOB_ENDED)).rowcount
    if wallets:
        # balance.low once per crossing below the threshold; it is armed again when the
        # balance is back at or over it
        queued += conn.execute(
            "WITH crossed AS (UPDATE webhooks w SET balance_low = b.balance < w.balance_below "
            "FROM balances b WHERE b.user_id = w.user_id AND w.user_id = ANY(%s) "
            "AND %s = ANY(w.events) AND w.balance_low <> (b.balance < w.balance_below) "
            "RETURNING w.webhook_id, w.user_id, w.balance_below, w.balance_low, b.balance, b.version) "
            "INSERT INTO webhook_deliveries (webhook_id, user_id, event, event_key, payload) "
            "SELECT webhook_id, user_id, %s, 'wallet:' || version, jsonb_build_object("
            "'balance', balance, 'balance_below', balance_below) FROM crossed WHERE balance_low "
            "ON CONFLICT (webhook_id, event_key) DO NOTHING",
            (list(wallets), BALANCE_LOW, BALANCE_LOW)).rowcount
    if queued:
        conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
    return queued


def prune(conn: psycopg.Connection[TupleRow]) -> None:
    """Forget deliveries that ended long ago."""
    conn.execute(f"DELETE FROM webhook_deliveries WHERE status <> 'pending' AND "  # noqa: S608
                 f"created_at < now() - interval '{KEEP_DELIVERIES}'")


@dataclass
class WebhookRow:
    """A registered webhook."""

    webhook_id: UUID
    url: str
    events: list[str]
    balance_below: int | None
    created_at: datetime


@dataclass
class DeliveryRow:
    """One delivery of the log."""

    delivery_id: UUID
    webhook_id: UUID
    event: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


Conn = psycopg.AsyncConnection[TupleRow]
HOOK_COLUMNS = "webhook_id, url, events, balance_below, created_at"
INSERT_HOOK = (
    "INSERT INTO webhooks (webhook_id, user_id, url, events, balance_below, balance_low, "
    "after_position) SELECT %s, %s, %s, %s, %s, coalesce((SELECT balance < %s FROM balances "
    "WHERE user_id = %s), false), coalesce((SELECT max(position) FROM projection_offsets), 0) "
    "RETURNING webhook_id, url, events, balance_below, created_at")
DELIVERY_COLUMNS = ("delivery_id, webhook_id, event, payload, status, attempts, next_attempt_at, "
                    "last_status, last_error, created_at, delivered_at")


async def register(conn: Conn, user_id: UUID, webhook_id: UUID, url: str, events: list[str],
                   balance_below: int | None, secret: str, limit: int) -> tuple[WebhookRow, str] | None:
    """A new webhook and the user's signing secret (made on their first); None over `limit`."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('webhooks:' || %s))", (str(user_id),))
        count = await (await conn.execute("SELECT count(*) FROM webhooks WHERE user_id = %s",
                                          (user_id,))).fetchone()
        if count and count[0] >= limit:
            return None
        await conn.execute("INSERT INTO webhook_secrets (user_id, secret) VALUES (%s, %s) "
                           "ON CONFLICT (user_id) DO NOTHING", (user_id, secret))
        row = await (await conn.execute("SELECT secret FROM webhook_secrets WHERE user_id = %s",
                                        (user_id,))).fetchone()
        # already below the threshold at registration: not news; sent when it next falls below
        async with conn.cursor(row_factory=class_row(WebhookRow)) as cur:
            await cur.execute(
                INSERT_HOOK, (webhook_id, user_id, url, events, balance_below, balance_below, user_id))
            hook = await cur.fetchone()
        assert hook is not None and row is not None  # noqa: S101 - just inserted
        return hook, str(row[0])


async def webhooks(conn: Conn, user_id: UUID) -> list[WebhookRow]:
    """The user's webhooks, oldest first."""
    async with conn.cursor(row_factory=class_row(WebhookRow)) as cur:
        await cur.execute(f"SELECT {HOOK_COLUMNS} FROM webhooks WHERE user_id = %s "  # noqa: S608
                          "ORDER BY created_at, webhook_id", (user_id,))
        return await cur.fetchall()


async def secret(conn: Conn, user_id: UUID) -> str | None:
    """The user's signing secret (None before their first webhook)."""
    row = await (await conn.execute("SELECT secret FROM webhook_secrets WHERE user_id = %s",
                                    (user_id,))).fetchone()
    return str(row[0]) if row else None


async def delete(conn: Conn, user_id: UUID, webhook_id: UUID) -> bool:
    """Delete one of the user's webhooks (and its pending deliveries); False if not theirs."""
    cur = await conn.execute("DELETE FROM webhooks WHERE webhook_id = %s AND user_id = %s",
                             (webhook_id, user_id))
    return cur.rowcount > 0


async def forget(conn: Conn, user_id: UUID) -> None:
    """Delete all of a user's webhooks, their deliveries and their secret (an erased account)."""
    await conn.execute("DELETE FROM webhooks WHERE user_id = %s", (user_id,))
    await conn.execute("DELETE FROM webhook_deliveries WHERE user_id = %s", (user_id,))
    await conn.execute("DELETE FROM webhook_secrets WHERE user_id = %s", (user_id,))


async def deliveries(conn: Conn, user_id: UUID, webhook_id: UUID, limit: int) -> list[DeliveryRow]:
    """The newest deliveries of one of the user's webhooks."""
    async with conn.cursor(row_factory=class_row(DeliveryRow)) as cur:
        await cur.execute(f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries "  # noqa: S608
                          "WHERE webhook_id = %s AND user_id = %s ORDER BY created_at DESC LIMIT %s",
                          (webhook_id, user_id, limit))
        return await cur.fetchall()
