"""The `balances` table: each user's credit balance and the wallet version it reflects."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

import domain.events as ev
from infra.published import PublishedEvent
from projections.encoding import pg_text
from projections.projection import Applied, Handler, Projection, guarded, table


def _version(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> int | None:
    row = conn.execute(sql.SQL("SELECT version FROM {} WHERE user_id = %s").format(
        table("balances", s)), (e.user_id,)).fetchone()
    return int(row[0]) if row else None


def _opened(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    inserted = conn.execute(sql.SQL(
        "INSERT INTO {} (user_id, balance, version, updated_at) VALUES (%s, 0, %s, %s) "
        "ON CONFLICT (user_id) DO NOTHING RETURNING 1").format(table("balances", s)),
        (e.user_id, e.aggregate_version, e.timestamp)).fetchone()
    return Applied.APPLIED if inserted else Applied.DUPLICATE


def _move(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str, balance: int,
          reserved: int = 0, promotional: int = 0) -> Applied:
    updated = conn.execute(sql.SQL(
        "UPDATE {} SET balance = balance + %s, reserved = reserved + %s, "
        "promotional = promotional + %s, version = %s, updated_at = %s "
        "WHERE user_id = %s AND version = %s RETURNING 1").format(table("balances", s)),
        (balance, reserved, promotional, e.aggregate_version, e.timestamp, e.user_id,
         e.aggregate_version - 1)).fetchone()
    return guarded(updated, None if updated else _version(conn, e, s), e.aggregate_version)


def _amount(e: PublishedEvent, name: str = "amount") -> int:
    return int(e.data.get(name) or 0)


def _from_grants(e: PublishedEvent) -> int:
    return sum(int(n) for n in (e.data.get("grants") or {}).values())


def _change(sign: int) -> Handler:
    def apply(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
        return _move(conn, e, s, sign * _amount(e))
    return apply


def _spend_grants(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str, sign: int) -> None:
    """What a reservation took from grants (-1), or a release gave back to them (+1)."""
    moved = [(sign * int(n), e.user_id, pg_text(str(g))) for g, n in (e.data.get("grants") or {}).items()]
    if moved:
        with conn.cursor() as cur:
            cur.executemany(sql.SQL("UPDATE {} SET remaining = remaining + %s WHERE user_id = %s "
                                    "AND grant_id = %s").format(table("credit_grants", s)), moved)


def _reserved(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    outcome = _move(conn, e, s, -_amount(e), _amount(e), -_from_grants(e))
    if outcome is Applied.APPLIED:
        _spend_grants(conn, e, s, -1)
    return outcome


def _captured(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    return _move(conn, e, s, 0, -_amount(e))


def _released(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    outcome = _move(conn, e, s, _amount(e) - _amount(e, "forfeited"), -_amount(e), _from_grants(e))
    if outcome is Applied.APPLIED:
        _spend_grants(conn, e, s, +1)
    return outcome


def _granted(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    outcome = _move(conn, e, s, _amount(e), 0, _amount(e))
    if outcome is Applied.APPLIED:
        conn.execute(sql.SQL(
            "INSERT INTO {} (grant_id, user_id, amount, remaining, expires_at, reason, granted_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING").format(
                table("credit_grants", s)),
            (pg_text(str(e.data["grant_id"])), e.user_id, _amount(e), _amount(e), e.data["expires_at"],
             pg_text(str(e.data.get("reason") or "")), e.timestamp))
    return outcome


def _grant_expired(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> Applied:
    outcome = _move(conn, e, s, -_amount(e), 0, -_amount(e))
    if outcome is Applied.APPLIED:
        conn.execute(sql.SQL(
            "UPDATE {} SET expired_at = %s, expired_amount = %s, remaining = 0 WHERE user_id = %s AND "
            "grant_id = %s").format(table("credit_grants", s)),
            (e.timestamp, _amount(e), e.user_id, pg_text(str(e.data["grant_id"]))))
    return outcome


def _forget(conn: psycopg.Connection[TupleRow], e: PublishedEvent, s: str) -> None:
    for name in ("balances", "credit_grants"):
        conn.execute(sql.SQL("DELETE FROM {} WHERE user_id = %s").format(table(name, s)),
                     (e.user_id,))


BALANCES = Projection(
    name="balances",
    tables=("balances", "credit_grants"),
    handlers={
        ev.WALLET_OPENED: _opened,
        ev.WALLET_DEPOSITED: _change(+1),
        ev.WALLET_GRANTED: _granted,
        ev.WALLET_GRANT_EXPIRED: _grant_expired,
        ev.WALLET_RESERVED: _reserved,
        ev.WALLET_CAPTURED: _captured,
        ev.WALLET_RELEASED: _released,
        # wallets recorded before holds: paid at submit, refunded on failure
        ev.WALLET_REFUNDED: _change(+1),
        ev.WALLET_CHARGED: _change(-1),
    },
    forget=_forget,
)
