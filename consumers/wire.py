"""What the consumer loop and the assignment use of a Kafka client, declared: kafka-python's
KafkaConsumer, KafkaProducer and ConsumerRecord fit (the library has no type hints), and so do
the unit tests' fakes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from kafka import ConsumerRebalanceListener, TopicPartition

from infra.dead_letters import Place


class Record(Place, Protocol):
    """One polled message: where it was read (topic, partition, offset), and what it holds."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...


class Consumer(Protocol):
    """A Kafka consumer, in a group (subscribe) or by assignment (assign and seek)."""

    def poll(self, timeout_ms: int = 0, max_records: int | None = None,
             ) -> Mapping[TopicPartition, list[Record]]: ...
    def commit(self) -> object: ...
    def close(self, autocommit: bool = True) -> None: ...
    def subscribe(self, topics: Sequence[str], listener: ConsumerRebalanceListener | None = None,
                  ) -> None: ...
    def assignment(self) -> Iterable[TopicPartition]: ...
    def partitions_for_topic(self, topic: str) -> Iterable[int] | None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    def beginning_offsets(self, partitions: list[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None: ...


class SendResult(Protocol):
    """What a send returns: its metadata once the broker acknowledged it."""

    def get(self, timeout: float | None = None) -> object: ...


class Producer(Protocol):
    """A Kafka producer (the dead-letter topic's)."""

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None,
             headers: list[tuple[str, bytes | None]] | None = None) -> SendResult: ...


def position_of(record: Record) -> int | None:
    """The store position of the event a record holds (its `position` header; None: none)."""
    for key, value in record.headers or ():
        if key == "position":
            if value is None:
                return None
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
