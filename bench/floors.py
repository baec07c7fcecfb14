"""What one round trip costs: the floor under every step of the cost model.

Each primitive the pipeline is made of, alone, over and over, on the running services: a
PostgreSQL round trip, a durable commit, one Kafka produce waited for, one fetch. For each, the
CPU it takes per operation in this process (kafka-python's I/O thread included) and in the
server (PostgreSQL's processes, the broker's), an idle reading of the servers subtracted.

These are the prices a step of `bench api --py-spy` cannot go below while it makes as many
round trips as it does: a step at (round trips per job x this floor) is at its floor, and
moves only with fewer round trips per job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

from bench.cpu import Reading
from infra import kafka_client

VALUE = b"x" * 900  # about a job.requested event's size
Op = Callable[[], Any]


def _measure(op: Op, seconds: float, servers: Mapping[str, list[int]]) -> dict[str, float]:
    """Run `op` for `seconds`; CPU ms per op here and in each server group, and wall ms."""
    op()  # warm
    idle_before = Reading.take(servers)
    time.sleep(min(1.0, seconds / 4))
    idle = {k: v / min(1.0, seconds / 4) for k, v in Reading.take(servers).since(idle_before).items()}
    n, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
    before = Reading.take(servers)
    deadline = wall0 + seconds
    while time.perf_counter() < deadline:
        op()
        n += 1
    wall = time.perf_counter() - wall0
    used = Reading.take(servers).since(before)
    out = {"ops": n, "wall_ms": round(wall * 1000 / n, 3),
           "client_cpu_ms": round((time.process_time() - cpu0) * 1000 / n, 3)}
    for name, seconds_used in used.items():
        out[f"{name}_cpu_ms"] = round(max(0.0, seconds_used - idle[name] * wall) * 1000 / n, 3)
    return out


def _sql_ops(database_url: str) -> tuple[dict[str, Op], Callable[[], None]]:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("create table if not exists bench_floor (id uuid primary key, body bytea)")

    def round_trip() -> None:
        conn.execute("select 1").fetchone()

    def commit() -> None:
        with conn.transaction():
            conn.execute("insert into bench_floor values (%s, %s)", (uuid.uuid4(), VALUE))

    def close() -> None:
        conn.execute("drop table if exists bench_floor")
        conn.close()

    return {"sql round trip (select 1)": round_trip,
            "sql commit (one insert, its own transaction)": commit}, close


def _kafka_ops(bootstrap: str) -> tuple[dict[str, Op], Callable[[], None]]:
    topic = f"bench-floor-{uuid.uuid4().hex[:8]}"
    # the hop's topic of its own: a fetch on Tansu's memory storage lists every batch of the
    # partition, so the produces' thousands would make its fetches dearer
    hops = f"{topic}-hop"
    kafka_client.ensure_topics(bootstrap, [topic, hops], partitions=1)
    # the relay's producer, without its 2 ms linger: each send is waited for alone
    producer = kafka_client.producer(bootstrap, linger_ms=0)

    def produce(count: int) -> Op:
        def op() -> None:
            futures = [producer.send(topic, key=b"k", value=VALUE) for _ in range(count)]
            producer.flush()
            for f in futures:
                f.get(timeout=30)
        return op

    from kafka import TopicPartition

    tp = TopicPartition(hops, 0)
    consumer = kafka_client.consumer(bootstrap, None)
    consumer.assign([tp])

    def hop() -> None:
        """One message produced, acknowledged, then fetched by a consumer waiting for it: a
        relay-to-consumer hop (the fetch alone is this less a produce)."""
        offset = producer.send(hops, key=b"k", value=VALUE).get(timeout=30).offset
        deadline = time.monotonic() + 30
        while not any(r.offset >= offset for r in consumer.poll(timeout_ms=1000).get(tp, ())):
            if time.monotonic() > deadline:
                raise TimeoutError(f"message {offset} of {hops} not fetched in 30 s")

    def close() -> None:
        consumer.close()
        producer.close()
        admin = kafka_client.admin(bootstrap)
        try:
            admin.delete_topics([topic, hops])
        finally:
            admin.close()

    return {"kafka produce, 1 message, acknowledged": produce(1),
            "kafka produce, 4 messages, one acknowledgement": produce(4),
            "kafka hop: produce 1 message, acknowledged, and fetch it": hop}, close


def bench_floors(database_url: str, bootstrap: str, servers: Mapping[str, list[int]],
                 seconds: float = 5.0) -> dict[str, Any]:
    """CPU per operation of each primitive, here and in the servers."""
    results: dict[str, dict[str, float]] = {}
    for make, address in ((_sql_ops, database_url), (_kafka_ops, bootstrap)):
        ops, close = make(address)
        try:
            for name, op in ops.items():
                results[name] = _measure(op, seconds, servers)
        finally:
            close()
    return {"benchmark": "floors", "seconds_each": seconds, "results": results}
