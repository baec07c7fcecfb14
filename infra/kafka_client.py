"""Kafka client configuration and topic administration (kafka-python)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError


class BrokerUnavailable(RuntimeError):
    """The broker did not answer, or a topic did not come to be, in time."""


# kafka-python backs off reconnects exponentially up to 30 s: a broker that restarted in 8 s
# was found again only 10-25 s later (bench chaos). Every client here tries at least every
# 250 ms (with 1 s, the relay, inference and the projector each found a restarted broker up to
# 1.2 s late, and a job waits for all three: bench chaos's broker restart healed in 8.0-10.6 s;
# a refused connection to a local port costs microseconds).
RECONNECT: dict[str, object] = {"reconnect_backoff_max_ms": 250}

CONSUMER_DEFAULTS: dict[str, object] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    # the fetch wait: see Settings.kafka_fetch_max_wait_ms (Tansu waits it out every time)
    "fetch_max_wait_ms": 10,
    "fetch_min_bytes": 1,
    # A metadata refresh is how a consumer learns of partitions a topic gained (its
    # Assignment takes them at its next refresh): every 5 s, not every 5 min.
    "metadata_max_age_ms": 5000,
    **RECONNECT,
}


def admin(bootstrap: str) -> KafkaAdminClient:
    """An admin client; the caller closes it."""
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="carprice-admin",
                            request_timeout_ms=15000, **RECONNECT)


def wait_ready(bootstrap: str, timeout: float = 60.0) -> None:
    """Wait until the broker answers metadata requests."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = admin(bootstrap)
            try:
                client.list_topics()
                return
            finally:
                client.close()
        except (KafkaError, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise BrokerUnavailable(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last}")


def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int, replicas: int = 1) -> None:
    """Create the topics that do not exist yet (never relying on auto-creation)."""
    client = admin(bootstrap)
    try:
        existing = set(client.list_topics())
        missing = [NewTopic(n, num_partitions=partitions, replication_factor=replicas)
                   for n in names if n not in existing]
        if missing:
            try:
                client.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # created concurrently by another process
    finally:
        client.close()
    _wait_for_partitions(bootstrap, list(names))


def _wait_for_partitions(bootstrap: str, names: list[str], timeout: float = 30.0) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(consumer.partitions_for_topic(n) for n in names):
                return
            time.sleep(0.2)
        raise BrokerUnavailable(f"topics {names} have no partitions after {timeout:.0f}s")
    finally:
        consumer.close()


def producer(bootstrap: str, **overrides: object) -> KafkaProducer:
    """An idempotent, acks=all producer."""
    config: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "max_in_flight_requests_per_connection": 5,
        # a missing topic or a dead broker surfaces in seconds, not after a minute
        "max_block_ms": 10_000,
        **RECONNECT,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def consumer(bootstrap: str, group_id: str | None, *topics: str, **overrides: object) -> KafkaConsumer:
    """A manually committing consumer in a group (None: the partitions are assigned, and
    carprice keeps its positions in PostgreSQL)."""
    config: dict[str, object] = {"bootstrap_servers": bootstrap, "group_id": group_id,
                              **CONSUMER_DEFAULTS}
    config.update(overrides)
    return KafkaConsumer(*topics, **config)


def _offsets_client(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=15000,
                         metadata_max_age_ms=CONSUMER_DEFAULTS["metadata_max_age_ms"], **RECONNECT)


def _end_offsets(client: KafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    """TopicPartition -> end offset, for every partition of the topic."""
    parts = [TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic) or ())]
    return client.end_offsets(parts) if parts else {}


class EndOffsets:
    """The end offset of each partition of one topic; one client, reconnected after a failure."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._client: KafkaConsumer | None = None

    def __call__(self) -> dict[int, int]:
        """partition -> end offset (empty when the topic does not exist)."""
        if self._client is None:
            self._client = _offsets_client(self.bootstrap)
        try:
            return {tp.partition: int(end) for tp, end in _end_offsets(self._client, self.topic).items()}
        except Exception:
            self.close()  # reconnect next time
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass(frozen=True)
class Message:
    """A message as a topic holds it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def read_one(bootstrap: str, topic: str, partition: int, offset: int,
             timeout: float = 15.0) -> Message | None:
    """The message at topic[partition]@offset, or None if the broker no longer has it."""
    tp = TopicPartition(topic, partition)
    client = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                           request_timeout_ms=15000)
    try:
        client.assign([tp])
        client.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in client.poll(timeout_ms=500).get(tp, []):
                if rec.offset == offset:
                    return Message(rec.key, rec.value, list(rec.headers or []))
                if rec.offset > offset:
                    return None
        return None
    finally:
        client.close()
