"""One active projector per projection, reading by assignment from the positions it keeps in
PostgreSQL: a standby takes over when it dies, and no consumer group is involved (so nothing
can be wedged in a group rebalance)."""

from __future__ import annotations

from uuid import UUID

import psycopg
import pytest

from commands.application import CarpriceApp
from infra.kafka_client import admin
from tests.conftest import Stack
from tests.procs import Processes, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _balance(db: str, user: UUID) -> int | None:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT balance FROM balances WHERE user_id = %s", (user,)).fetchone()
    return int(row[0]) if row else None


def test_a_standby_projector_takes_over_from_where_the_dead_one_left_off(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    procs.start("relay")
    first = procs.start("consume", "projections")
    wait_for(lambda: "partitions assigned" in first.text(), what="the first projector to lead")
    second = procs.start("consume", "projections")
    wait_for(lambda: "standing by" in second.text(), what="the second projector to stand by")
    user = app.sign_up("Standby", f"standby-{unique}@example.com", "password-123").user_id
    app.deposit(user, 10)
    wait_for(lambda: _balance(stack.database_url, user) == 10, what="the deposit projected")
    assert "partitions assigned" not in second.text()  # one active at a time

    first.kill()  # SIGKILL: its session, and with it the lock, ends at once
    app.deposit(user, 20)
    wait_for(lambda: _balance(stack.database_url, user) == 30, timeout=30,
             what="the standby to take over and project the next deposit")
    taken = second.text()
    assert "took over as the active one" in taken and "(by position, no group)" in taken
    # it went on from the positions the dead one saved: the first deposit was not applied again
    # from the start of the topic (every partition starts after an applied offset or at 0)
    assert "reading the partition from its start" not in taken

    client = admin(stack.kafka_bootstrap)
    try:
        groups = [str(g) for g in client.list_groups()]
    finally:
        client.close()
    assert not [g for g in groups if f"t{unique}-projections" in g]  # no group to rebalance


def test_a_projector_restarted_on_a_topic_published_anew_reads_it_again_from_the_start(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    """Offsets saved against a topic the broker lost mean other events in the topic published
    anew: the projector checks the event at each saved offset and rereads what does not match."""
    user = app.sign_up("Anew", f"anew-{unique}@example.com", "password-123").user_id
    app.deposit(user, 7)
    relay = procs.start("relay")
    projector = procs.start("consume", "projections")
    wait_for(lambda: _balance(stack.database_url, user) == 7, what="the deposit projected")
    projector.stop()
    relay.stop()
    topic = f"t{unique}.events"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        # as if the saved offsets had been applied from another copy of the topic
        conn.execute("UPDATE projection_offsets SET position = position + 1000000 WHERE topic = %s",
                     (topic,))
        conn.execute("UPDATE balances SET balance = 0, version = 0 WHERE user_id = %s", (user,))
    again = procs.start("consume", "projections")
    wait_for(lambda: "(by position, no group)" in again.text(), what="the projector to start")
    assert "reading the partition from its start" in again.text()
    wait_for(lambda: _balance(stack.database_url, user) == 7, what="the deposit projected again")




def test_a_projector_whose_sessions_a_database_restart_ended_leads_again_and_goes_on(
    app: CarpriceApp, procs: Processes, stack: Stack, unique: str
) -> None:
    """A restart ends every session, the leadership lock's with them: the active projector
    takes its lock again on a new session and goes on, instead of stopping and starting over."""
    user = app.sign_up("Restart", f"restart-{unique}@example.com", "password-123").user_id
    app.deposit(user, 5)
    procs.start("relay")
    projector = procs.start("consume", "projections")
    wait_for(lambda: _balance(stack.database_url, user) == 5, what="the deposit projected")
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        ended = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                             ).fetchone()
    assert ended and ended[0] > 0
    app.discard_broken_connections()
    app.deposit(user, 6)
    wait_for(lambda: _balance(stack.database_url, user) == 11, timeout=30,
             what="the next deposit projected")
    wait_for(lambda: "leads again on a new session" in projector.text(), timeout=10,
             what="the projector to lead again")
    assert "stopping so that only one projector is active" not in projector.text()
    assert projector.text().count("partitions assigned") == 1  # it went on; it did not start over
