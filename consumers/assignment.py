"""Reading a topic by assignment from positions kept in PostgreSQL: the projector's way.

The projector writes its rows and, in the same transaction, the last Kafka offset it applied
per partition (projections/state.py). Those positions are the truth, so it needs no consumer
group: it assigns itself every partition and seeks each to the message after the last one
applied. A crash or a restart never waits on a group rebalance (Tansu could keep a group
rebalancing for minutes), and one projector is active per projection by a PostgreSQL advisory
lock instead (cli/processes.py), with standbys that take over within a second.

A position is checked before it is trusted: the message at the applied offset must still be
the event applied there (its `position` header). After the broker lost its data and the relay
published the store again, offsets mean other events: the partition is then read from its
start (the projections are idempotent), never from an offset that could skip events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from kafka import TopicPartition
from kafka.errors import KafkaError

from consumers.wire import Consumer, Record

log = logging.getLogger("carprice.consumer")

# partition -> (last Kafka offset applied, the store position of the event there)
Applied = Callable[[], Mapping[int, tuple[int, int]]]


def _position(record: Record) -> int | None:
    for key, value in record.headers or ():
        if key == "position":
            if value is None:
                return None
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


class Assignment:
    """Every partition of `topic`, each from the message after the last one applied."""

    def __init__(self, name: str, topic: str, applied: Applied, refresh_seconds: float = 5.0,
                 check_timeout: float = 5.0) -> None:
        self.name, self.topic, self.applied = name, topic, applied
        self.refresh_seconds, self.check_timeout = refresh_seconds, check_timeout
        self.partitions: set[int] = set()
        self._refreshed = 0.0

    def join(self, consumer: Consumer) -> None:
        """Assign the topic's partitions and seek each where its projection left off (a broker
        that does not answer: tried again at the next refresh)."""
        try:
            self._join(consumer)
        except KafkaError as exc:
            log.warning("%s: could not take the partitions of %s: %s; trying again in %.0f s",
                        self.name, self.topic, exc, self.refresh_seconds)
            self.partitions, self._refreshed = set(), time.monotonic()

    def _join(self, consumer: Consumer) -> None:
        parts = self._partitions(consumer)
        if not parts:
            log.warning("%s: %s has no partitions yet; looking again in %.0f s", self.name,
                        self.topic, self.refresh_seconds)
            self.partitions, self._refreshed = set(), time.monotonic()
            return
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        begins = consumer.beginning_offsets(tps)
        known = self.applied()
        starts = {tp: self._start(consumer, tp, known.get(tp.partition), begins[tp]) for tp in tps}
        consumer.assign(tps)
        for tp, start in starts.items():
            consumer.seek(tp, start)
        self.partitions, self._refreshed = set(parts), time.monotonic()
        log.info("%s: partitions assigned: %s (by position, no group)", self.name,
                 ", ".join(f"{tp.topic}[{tp.partition}]@{starts[tp]}" for tp in tps))

    def refresh(self, consumer: Consumer) -> None:
        """Now and then: take partitions the topic gained (or got at last) since the join."""
        if time.monotonic() - self._refreshed < self.refresh_seconds:
            return
        self._refreshed = time.monotonic()
        if self._partitions(consumer) - self.partitions:
            self.join(consumer)

    def _partitions(self, consumer: Consumer) -> set[int]:
        try:
            return set(consumer.partitions_for_topic(self.topic) or ())
        except KafkaError as exc:
            log.warning("%s: no partition metadata for %s: %s", self.name, self.topic, exc)
            return set()

    def _start(self, consumer: Consumer, tp: TopicPartition, applied: tuple[int, int] | None,
               begin: int) -> int:
        # Not the end offset: Tansu 0.6 can answer one below messages it has already served
        # (seen: 559 for a partition whose message 567 had been applied). Only the message
        # at the applied offset says whether the position still holds.
        if applied is None:
            return begin
        offset, position = applied
        if offset < begin:
            log.warning("%s: %s[%d] starts at %d, after what was applied (%d): reading from its "
                        "start", self.name, tp.topic, tp.partition, begin, offset)
            return begin
        found = self._position_at(consumer, tp, offset)
        if found != position:
            log.warning("%s: %s[%d]@%d holds %s, not the event at position %d that was applied "
                        "there: the broker lost it or the topic was published anew; reading the "
                        "partition from its start", self.name, tp.topic, tp.partition, offset,
                        "nothing" if found is None else f"position {found}", position)
            return begin
        return offset + 1

    def _position_at(self, consumer: Consumer, tp: TopicPartition, offset: int) -> int | None:
        """The store position of the message at tp@offset (None: none there)."""
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + self.check_timeout
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                return _position(record) if record.offset == offset else None
        return None
