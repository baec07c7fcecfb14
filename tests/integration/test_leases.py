"""Inference's partitions shared by leases in PostgreSQL (infra/leases.py), with a real
database: members split the partitions fairly, a dead member's partitions are taken at the
next renewal, positions survive the member that saved them, and a member whose session
the database ended gets its partitions back."""

from __future__ import annotations

import time

import psycopg
import pytest

from infra.leases import Leases
from tests.conftest import Stack

pytestmark = [pytest.mark.postgres]

PARTITIONS = set(range(12))


def _member(stack: Stack, unique: str) -> Leases:
    return Leases(stack.database_url, f"inference-{unique}", f"t{unique}.events")


def test_members_split_the_partitions_and_the_survivor_takes_a_dead_ones_at_once(
    stack: Stack, unique: str
) -> None:
    first, second, third = (_member(stack, unique) for _ in range(3))
    try:
        assert first.balance(PARTITIONS) == PARTITIONS  # alone: every partition
        assert second.balance(PARTITIONS) == set()  # none free yet: the first gives some up...
        assert len(first.balance(PARTITIONS)) == 6  # ...at its next renewal
        assert len(second.balance(PARTITIONS)) == 6
        assert first.held.isdisjoint(second.held)
        third.balance(PARTITIONS)
        for member in (first, second, third, first, second, third):
            member.balance(PARTITIONS)
        shares = [first.held, second.held, third.held]
        assert sorted(len(s) for s in shares) == [4, 4, 4]
        assert set().union(*shares) == PARTITIONS  # each partition read by exactly one member

        third.close()  # a SIGKILL ends its session just the same: every lease goes with it
        started = time.monotonic()
        # The server drops a closed session's locks as its backend exits, a moment after
        # close() returns: the survivors renew (every 0.5 s in service, 50 ms here) until
        # they hold the lot.
        while time.monotonic() - started < 1.0:
            first.balance(PARTITIONS)
            second.balance(PARTITIONS)
            if first.held | second.held == PARTITIONS:
                break
            time.sleep(0.05)
        assert first.held | second.held == PARTITIONS  # at the survivors' next renewals
        assert sorted([len(first.held), len(second.held)]) == [6, 6]
        assert time.monotonic() - started < 1.0  # no session to wait out, no rebalance
    finally:
        for member in (first, second, third):
            member.close()


def test_positions_outlive_the_member_that_saved_them(stack: Stack, unique: str) -> None:
    first = _member(stack, unique)
    first.balance({0, 1})
    first.save({0: (41, 1041), 1: (7, 1007)})
    first.save({0: (42, 1042)})  # a later batch
    first.close()
    heir = _member(stack, unique)
    try:
        assert heir.balance({0, 1}) == {0, 1}
        assert heir.saved() == {0: (42, 1042), 1: (7, 1007)}
    finally:
        heir.close()


def test_a_member_whose_session_was_ended_leases_its_partitions_again(
    stack: Stack, unique: str
) -> None:
    member = _member(stack, unique)
    try:
        assert member.balance(PARTITIONS) == PARTITIONS
        pid = member._session().info.backend_pid  # noqa: SLF001 - the session to end
        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))  # as a restart would
        time.sleep(0.2)
        assert member.balance(PARTITIONS) == PARTITIONS  # a new session, the same leases
        other = _member(stack, unique)
        try:
            assert other.balance(PARTITIONS) == set()  # they are really held again
        finally:
            other.close()
    finally:
        member.close()


def test_after_a_restart_the_first_member_back_waits_for_the_others_before_taking_theirs(
    stack: Stack, unique: str
) -> None:
    first, second = _member(stack, unique), _member(stack, unique)
    try:
        first.balance(PARTITIONS)
        second.balance(PARTITIONS)
        first.balance(PARTITIONS)
        second.balance(PARTITIONS)
        mine, theirs = set(first.held), set(second.held)
        assert len(mine) == len(theirs) == 6
        with psycopg.connect(stack.database_url, autocommit=True) as admin:
            for member in (first, second):  # a database restart ends every session
                admin.execute("SELECT pg_terminate_backend(%s)",
                              (member._session().info.backend_pid,))  # noqa: SLF001
        time.sleep(0.2)
        assert first.balance(PARTITIONS) == mine  # back first, alone: its own, not the others'
        assert second.balance(PARTITIONS) == theirs
    finally:
        first.close()
        second.close()
