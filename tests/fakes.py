"""Handwritten fakes for unit tests (no mocks of our own classes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kafka import TopicPartition

from domain.catalog import ModelOffer
from domain.errors import UnknownModel

SCHEMA = {
    "horsepower": {"kind": "numeric", "dtype": "int", "min": 48, "max": 288,
                   "allowed_min": 0, "allowed_max": 528, "default": 95},
    "fueltype": {"kind": "categorical", "categories": ["diesel", "gas"], "default": "gas"},
    "brand": {"kind": "categorical", "categories": ["toyota", "volkswagen"], "default": "toyota",
              "aliases": {"vw": "volkswagen"}},
    "model": {"kind": "text", "max_length": 64, "by_brand": {}, "default": "corolla"},
}
CAR = {"horsepower": 110, "fueltype": "gas", "brand": "toyota", "model": "corolla"}


class FakeCatalog:
    """Two models with fixed prices and a four-feature schema."""

    def __init__(self) -> None:
        self.offers = {
            "cheap": ModelOffer("cheap", "1", 10, SCHEMA),
            "pricey": ModelOffer("pricey", "3", 40, SCHEMA, explain_price=5),
        }

    def offer(self, name: str) -> ModelOffer:
        if name not in self.offers:
            raise UnknownModel(name, sorted(self.offers))
        return self.offers[name]

    def follow(self, promoted: Callable[[str], str | None]) -> Callable[[], None]:
        self.promoted = promoted  # the fake's offers are fixed: no champion to follow
        return lambda: None


# -- Kafka fakes for the consumer loop ------------------------------------------------------


class Record:
    """A consumed message as kafka-python hands it over."""

    def __init__(self, value: bytes, offset: int, partition: int = 0, topic: str = "t.events",
                 key: bytes = b"k", headers: list[tuple[str, bytes]] | None = None) -> None:
        self.value, self.offset, self.partition, self.topic = value, offset, partition, topic
        self.key, self.headers = key, headers or []


class FakeConsumer:
    """Hands out queued batches, one per poll; notes the positions saved in a shared journal."""

    def __init__(self, batches: list[list[Record]], journal: list[str] | None = None) -> None:
        self.batches = list(batches)
        self.journal = journal if journal is not None else []
        self.handed: list[Record] = []
        self.committed: list[int] = []  # the highest offset saved, at each save
        self.closed = False
        self.assigned: list[TopicPartition] = []
        self.seeks: dict[TopicPartition, int] = {}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset

    def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int:
        return max((r.offset + 1 for r in self.handed), default=0)

    def save(self, marks: Mapping[int, tuple[int, int | None]]) -> None:
        """The loop's save_positions: what a leased consumer writes to PostgreSQL."""
        self.committed.append(max(offset for offset, _ in marks.values()))
        self.journal.append(f"commit {self.committed[-1]}")

    def poll(self, timeout_ms: int = 0, max_records: int = 500) -> dict[str, list[Record]]:
        if not self.batches:
            return {}
        batch = self.batches.pop(0)
        self.handed += batch
        return {"t-0": batch}

    def close(self, autocommit: bool = False) -> None:
        self.closed = True


class _Sent:
    def __init__(self, error: Exception | None, partition: int, offset: int) -> None:
        self.error, self.partition, self.offset = error, partition, offset

    def get(self, timeout: float = 0) -> _Sent:
        if self.error is not None:
            raise self.error
        return self


class FakeProducer:
    """Accepts sends (failing the first `fail_first`); notes confirmed sends in the journal."""

    def __init__(self, fail_first: int = 0, journal: list[str] | None = None) -> None:
        self.fail_first = fail_first
        self.journal = journal if journal is not None else []
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, bytes]]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> _Sent:
        if self.fail_first > 0:
            self.fail_first -= 1
            return _Sent(TimeoutError("broker did not acknowledge"), 0, -1)
        self.sent.append((topic, key, value, dict(headers or [])))
        self.journal.append(f"sent {topic}")
        return _Sent(None, 0, len(self.sent) - 1)

    def flush(self, timeout: float = 0) -> None:
        return None


class FakeDeadLetterLog:
    """Keeps the index rows in memory."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, int, int, tuple[int, int] | None]] = []

    def record(self, consumer: str, reason: str, record: Record, error: BaseException,
               attempts: int, event: object, dlq_place: tuple[int, int] | None) -> None:
        self.rows.append((consumer, reason, record.offset, attempts, dlq_place))


class FakeFollower:
    """The relay's position and turn, in memory."""

    def __init__(self, start: int = 0, leader: bool = True) -> None:
        self.at, self.leader = start, leader
        self.announced: list[str] = []
        self.rewinds: list[int] = []

    def __enter__(self) -> FakeFollower:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def lead(self, stopping: object) -> bool:
        return self.leader

    def position(self) -> int:
        return self.at

    def advance(self, to: int) -> None:
        self.at = max(self.at, to)

    def rewind(self, to: int) -> None:
        self.at = to
        self.rewinds.append(to)

    def announce(self, channel: str, payload: str) -> None:
        self.announced.append(payload)


class _Ack:
    def __init__(self, partition: int, offset: int, error: Exception | None = None) -> None:
        self.partition, self.offset, self.error = partition, offset, error

    def get(self, timeout: float = 0) -> _Ack:
        if self.error is not None:
            raise self.error
        return self


class FakeBroker:
    """A topic of `partitions` logs in memory; `lose()` empties them, as a restart of Tansu would."""

    def __init__(self, partitions: int = 3) -> None:
        self.logs: list[list[tuple[bytes, bytes, dict[str, bytes]]]] = [[] for _ in range(partitions)]
        self.failing = 0  # sends still to refuse

    def producer(self) -> FakeBroker:
        return self

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> _Ack:
        if self.failing > 0:
            self.failing -= 1
            from kafka.errors import KafkaTimeoutError

            return _Ack(0, -1, KafkaTimeoutError("broker not acknowledging"))
        partition = sum(key) % len(self.logs)
        self.logs[partition].append((key, value, dict(headers)))
        return _Ack(partition, len(self.logs[partition]) - 1)

    def flush(self, timeout: float = 0) -> None:
        return None

    def close(self, timeout: float = 0) -> None:
        return None

    def end_offsets(self) -> dict[int, int]:
        return {p: len(log) for p, log in enumerate(self.logs)}

    def lose(self) -> None:
        self.logs = [[] for _ in self.logs]

    def positions(self) -> list[int]:
        import json

        return [json.loads(value)["position"] for log in self.logs for _, value, _ in log]
