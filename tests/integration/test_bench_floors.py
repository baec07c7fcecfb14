"""The cost model's floors and round-trip counts, against the real PostgreSQL and broker."""

from __future__ import annotations

import time

import psycopg

from bench.api import Hops
from bench.floors import bench_floors
from commands.relay import PUBLISHED_CHANNEL
from tests.conftest import Stack


def test_every_primitive_is_timed_and_a_hop_costs_more_than_its_produce(stack: Stack) -> None:
    figures = bench_floors(stack.database_url, stack.kafka_bootstrap, {}, seconds=0.5)["results"]
    assert set(figures) == {"sql round trip (select 1)", "sql commit (one insert, its own transaction)",
                            "kafka produce, 1 message, acknowledged",
                            "kafka produce, 4 messages, one acknowledgement",
                            "kafka hop: produce 1 message, acknowledged, and fetch it"}
    for name, f in figures.items():
        assert f["ops"] > 0 and f["client_cpu_ms"] > 0 and f["wall_ms"] > 0, name
    # a hop is a produce and a fetch: it takes this process's client more CPU than a produce
    assert (figures["kafka hop: produce 1 message, acknowledged, and fetch it"]["client_cpu_ms"]
            > figures["kafka produce, 1 message, acknowledged"]["client_cpu_ms"])
    with psycopg.connect(stack.database_url) as conn:  # the scratch table is gone
        assert conn.execute("SELECT to_regclass('bench_floor')").fetchone() == (None,)


def test_hops_count_the_relays_batches_and_the_transactions_per_job(stack: Stack) -> None:
    hops = Hops(stack.database_url)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        for _ in range(6):  # six relay batches' announcements, each its own transaction
            conn.execute("SELECT pg_notify(%s, 'events')", (PUBLISHED_CHANNEL,))
    # PostgreSQL counts a session's transactions when it ends (a moment after close())
    deadline = time.monotonic() + 10
    while (hops.batches < 6 or hops.count_transactions() < hops.transactions + 6) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    per_job = hops.per_job(3)
    assert per_job["relay_batches"] == 2.0
    assert per_job["postgres_transactions"] >= 2.0  # six notifies over three jobs, and the waits'
