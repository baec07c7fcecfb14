"""Erasure against the real stack: after DELETE /me no byte of the name or email is left in the
event store, the read tables or the Kafka topic; the ledger still balances."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
import requests
from psycopg import sql

from tests.conftest import Stack
from tests.e2e.conftest import Api
from tests.procs import topic_messages, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _tables_holding(db: str, needle: str) -> list[str]:
    """Every table of the database with a row whose text (bytea as hex) contains `needle`."""
    found = []
    with psycopg.connect(db, autocommit=True) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE "
                              "table_schema NOT IN ('pg_catalog', 'information_schema') AND "
                              "table_type = 'BASE TABLE'").fetchall()
        for schema, table in tables:
            hit = conn.execute(sql.SQL("SELECT 1 FROM {}.{} t WHERE t::text ILIKE %s OR t::text ILIKE %s "
                                       "LIMIT 1").format(sql.Identifier(schema), sql.Identifier(table)),
                               (f"%{needle}%", f"%{needle.encode().hex()}%")).fetchone()
            if hit:
                found.append(f"{schema}.{table}")
    return found


def _on_topic(stack: Stack, needle: bytes, user: str) -> tuple[bool, bool]:
    """(the needle is in a message of the e2e topic, the user's erasure has been published)."""
    messages = topic_messages(stack.kafka_bootstrap, "e2e.events")
    raw = [m.value + (m.key or b"") + b"".join(v for _, v in m.headers) for m in messages]
    erased = any(json.loads(m.value).get("type") == "user.erased.v1"
                 and json.loads(m.value).get("aggregate_id") == user for m in messages)
    return any(needle.lower() in r.lower() for r in raw), erased


def test_an_erased_account_leaves_no_name_or_email_anywhere_and_the_books_balance(
    api: Api, shared_stack: Stack, car: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex[:10]
    name, email, password = f"Erin Vasquez-{tag}", f"erin.{tag}@example.com", "password-123"
    requests.post(api.url("/sign_up"), json={"name": name, "email": email, "password": password},
                  timeout=30).raise_for_status()
    token = requests.post(api.url("/sign_in"), json={"email": email, "password": password},
                          timeout=30).json()["token"]
    h = {"Authorization": f"Bearer {token}"}
    user = requests.get(api.url("/me"), headers=h, timeout=30).json()["user_id"]
    requests.post(api.url("/balance"), json={"amount": 100}, headers=h, timeout=30).raise_for_status()
    job = requests.post(api.url("/predict"), json={"model_name": "linear_regression", "data": car},
                        headers=h, timeout=30).json()["job_id"]
    ended = requests.get(api.url(f"/predict/{job}?wait=25"), headers=h, timeout=60).json()
    assert ended["status"] == "finished"
    hook = requests.post(api.url("/webhooks"), headers=h, timeout=30,
                         json={"url": f"https://example.com/{tag}", "events": ["job.ended"]})
    assert hook.status_code in (200, 201), hook.text

    refused = requests.delete(api.url("/me"), json={"password": "not-my-password"}, headers=h, timeout=30)
    assert refused.status_code == 403
    erased = requests.delete(api.url("/me"), json={"password": password}, headers=h, timeout=60)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] is True

    # nowhere: not in the event store's bytes (events, snapshots), any read table, the topic
    wait_for(lambda: _on_topic(shared_stack, b"", user)[1], timeout=60, what="the erasure to be published")
    for needle in (email, name, tag):
        assert _tables_holding(api.database_url, needle) == [], needle
        assert _on_topic(shared_stack, needle.encode(), user)[0] is False, needle
    # the account is gone, its token too; the email registers again, as a new account
    assert requests.get(api.url("/balance"), headers=h, timeout=30).status_code == 401
    assert requests.post(api.url("/sign_in"), json={"email": email, "password": password},
                         timeout=30).status_code == 401
    again = requests.post(api.url("/sign_up"), json={"name": "Erin", "email": email, "password": password},
                          timeout=30)
    assert again.status_code == 200 and again.json()["user_id"] != user

    # what is kept, for the books: the balances row and the job, under the id alone
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        price = conn.execute("SELECT price FROM prediction_history WHERE job_id = %s", (job,)).fetchone()
        balance = conn.execute("SELECT balance, reserved FROM balances WHERE user_id = %s",
                               (user,)).fetchone()
        assert price is not None and balance == (100 - price[0], 0)
        assert conn.execute("SELECT count(*) FROM webhooks WHERE user_id = %s", (user,)).fetchone() == (0,)
    audit = subprocess.run([sys.executable, "-m", "cli.main", "audit", "--all", "--json"],
                           env=api.procs.env, capture_output=True, text=True, timeout=300)
    mine = next(r for r in json.loads(audit.stdout) if r["user_id"] == user)
    assert mine["consistent"] and mine["replayed_balance"] == 100 - price[0]
