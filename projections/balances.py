"""The `balances` table: each user's credit balance and the wallet version it reflects."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

import domain.events as ev
from infra.published import PublishedEvent
from projections.projection import Applied, Handler, Projection, guarded, table


def _version(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> int | None:
    row = conn.execute(sql.SQL("SELECT version FROM {} WHERE user_id = %s").format(
        table("balances", s)), (e.user_id,)).fetchone()
    return int(row[0]) if row else None


def _opened(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (user_id, balance, version, updated_at) VALUES (%s, 0, %s, %s) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING 1").format(table("balances", s)),
        (e.user_id, e.aggregate_version, e.timestamp)).fetchone()
    return Applied.APPLIED if inserted else Applied.DUPLICATE


def _change(sign: int) -> Handler:
    def apply(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> Applied:
        amount = sign * int(e.data.get("amount", 0))
        updated = conn.execute(sql.SQL(
            "UPDATE {} SET balance = balance + %s, version = %s, updated_at = %s "
            "WHERE user_id = %s AND version = %s RETURNING 1").format(table("balances", s)),
            (amount, e.aggregate_version, e.timestamp, e.user_id, e.aggregate_version - 1)).fetchone()
        return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)
    return apply


def _forget(conn: psycopg.Connection[Any], e: PublishedEvent, s: str) -> None:
    conn.execute(sql.SQL("DELETE FROM {} WHERE user_id = %s").format(table("balances", s)),
                 (e.user_id,))


BALANCES = Projection(
    name="balances",
    tables=("balances",),
    handlers={
        ev.WALLET_OPENED: _opened,
        ev.WALLET_DEPOSITED: _change(+1),
        ev.WALLET_REFUNDED: _change(+1),
        ev.WALLET_CHARGED: _change(-1),
    },
    forget=_forget,
)
