"""`carprice bench fetch`: the broker's CPU per fetch as a partition grows.

A consumer that is caught up fetches the tail of its partitions over and over; what one such
fetch costs the broker should not depend on how much the partition already holds. Tansu 0.6's
memory storage lists every stored batch of the partition on each fetch (tansu-storage
`DynoStore::fetch`), so there it grows with the partition; on Apache Kafka it stays flat (an
index lookup). This measures it on the embedded home's broker: one partition of a topic of its
own, filled with single-record batches up to each size, then N fetches of its last record.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import uuid4

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.cpu import Reading, service_pids
from infra.kafka_client import admin, ensure_topics
from infra.settings import Settings

SIZES = (1_000, 5_000, 20_000)


def bench_fetch(settings: Settings, kafka: str, sizes: tuple[int, ...] = SIZES,
                fetches: int = 200) -> dict[str, Any]:
    """Per partition size (batches): the broker's CPU ms per tail fetch. Figures, never pass/fail."""
    broker = service_pids(settings.home).get("broker")
    if not broker:
        raise RuntimeError("no embedded broker in this home: `carprice services up` first")
    topic = f"benchfetch-{uuid4().hex[:8]}"
    ensure_topics(kafka, [topic], 1, settings.kafka_replication_factor)
    producer = KafkaProducer(bootstrap_servers=kafka, linger_ms=0, acks=1)
    consumer = KafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False,
                             fetch_max_wait_ms=settings.fetch_max_wait_ms)
    part = TopicPartition(topic, 0)
    consumer.assign([part])
    rows: list[dict[str, Any]] = []
    try:
        stored = 0
        for size in sorted(sizes):
            while stored < size:  # one record per produce request: one stored batch each
                producer.send(topic, b"x" * 300).get(timeout=30)
                stored += 1
            end = consumer.end_offsets([part])[part]
            before, started, got = Reading.take({"broker": broker}), time.monotonic(), 0
            for _ in range(fetches):
                consumer.seek(part, end - 1)
                got += sum(len(r) for r in consumer.poll(timeout_ms=5000, max_records=1).values())
            spent = Reading.take({"broker": broker}).since(before)["broker"]
            rows.append({"batches": size, "fetches": got,
                         "broker_cpu_ms_per_fetch": round(1000 * spent / max(got, 1), 3),
                         "wall_ms_per_fetch": round(1000 * (time.monotonic() - started) / fetches, 2)})
    finally:
        producer.close()
        consumer.close()
        client = admin(kafka)
        try:
            client.delete_topics([topic])
        finally:
            client.close()
    return {"benchmark": "fetch", "broker": settings.kafka_impl, "record_bytes": 300, "sizes": rows}
