"""Reading a topic by assignment from positions kept in PostgreSQL: the projector's and
inference's way.

The projector writes its rows and, in the same transaction, the last Kafka offset it applied
per partition (projections/state.py). Those positions are the truth, so it needs no consumer
group: it assigns itself every partition and seeks each to the message after the last one
applied. A crash or a restart never waits on a group rebalance (Tansu could keep a group
rebalancing for minutes), and one projector is active per projection by a PostgreSQL advisory
lock instead (cli/processes.py), with standbys that take over within a second.

Inference reads the same way, with leases (infra/leases.py): each member reads the partitions
it holds an advisory lock on, its fair share among the live members, and saves its positions
in `consumer_positions`; a dead member's partitions are leased by the others within a refresh.

A position is checked before it is trusted: the message at the applied offset must still be
the event applied there (its `position` header). After the broker lost its data and the relay
published the store again, offsets mean other events: the partition is then read from its
start (the projections are idempotent), never from an offset that could skip events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import psycopg
from kafka import TopicPartition
from kafka.errors import KafkaError

from consumers.wire import Consumer, position_of

log = logging.getLogger("carprice.consumer")

# partition -> (last Kafka offset applied, the store position of the event there)
Applied = Callable[[], Mapping[int, tuple[int, int]]]


class Leases(Protocol):
    """A member's share of a topic's partitions (infra.leases.Leases)."""

    def balance(self, partitions: set[int]) -> set[int]: ...


class Assignment:
    """The partitions of `topic` this process reads (every one; with `leases`, its share), each
    from the message after the last one applied."""

    def __init__(self, name: str, topic: str, applied: Applied, refresh_seconds: float = 5.0,
                 check_timeout: float = 5.0, leases: Leases | None = None) -> None:
        self.name, self.topic, self.applied = name, topic, applied
        self.refresh_seconds, self.check_timeout = refresh_seconds, check_timeout
        self.leases = leases
        self.partitions: set[int] = set()
        self._refreshed = 0.0
        self._joined = False

    def join(self, consumer: Consumer) -> None:
        """Assign the partitions (with leases: this member's share) and seek each where it
        was left off (a broker or a database that does not answer: tried again at the next
        refresh)."""
        self._refreshed = time.monotonic()
        try:
            self._join(consumer)
        except (KafkaError, psycopg.Error) as exc:
            log.warning("%s: could not take the partitions of %s: %s; trying again in %.1f s",
                        self.name, self.topic, exc, self.refresh_seconds)
            self.partitions, self._joined = set(), False  # all from their saved positions then

    def _join(self, consumer: Consumer) -> None:
        parts = self._partitions(consumer)
        if not parts:
            log.warning("%s: %s has no partitions yet; looking again in %.1f s", self.name,
                        self.topic, self.refresh_seconds)
            return
        wanted = parts if self.leases is None else self.leases.balance(parts)
        if wanted != self.partitions or not self._joined:
            self._assign(consumer, wanted)

    def _assign(self, consumer: Consumer, wanted: set[int]) -> None:
        """Read `wanted`: the partitions kept go on from where they are, the others start
        after what was applied there."""
        tps = {p: TopicPartition(self.topic, p) for p in sorted(wanted)}
        starts = {p: self._current(consumer, tps[p]) for p in wanted & self.partitions}
        new = [tps[p] for p in sorted(wanted) if starts.get(p) is None]
        if new:
            begins = consumer.beginning_offsets(new)
            known = self.applied()
            for tp in new:
                starts[tp.partition] = self._start(consumer, tp, known.get(tp.partition), begins[tp])
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, starts[p])  # type: ignore[arg-type]  # every one was set above
        self.partitions, self._joined = set(wanted), True
        how = "by position, no group" if self.leases is None else "leased"
        log.info("%s: partitions assigned: %s (%s)", self.name,
                 ", ".join(f"{self.topic}[{p}]@{starts[p]}" for p in tps) or "none", how)

    @staticmethod
    def _current(consumer: Consumer, tp: TopicPartition) -> int | None:
        """Where the consumer is on a partition it keeps (None: not known)."""
        try:
            return consumer.position(tp, timeout_ms=1000)
        except KafkaError:
            return None

    def due(self) -> bool:
        """Whether a refresh is due (the loop saves its positions first)."""
        return time.monotonic() - self._refreshed >= self.refresh_seconds

    def refresh(self, consumer: Consumer) -> None:
        """Now and then: take partitions the topic gained (or got at last) since the join;
        with leases, give up or take partitions as members come and go."""
        if not self.due():
            return
        if self.leases is not None or not self._joined:
            self.join(consumer)
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
                return position_of(record) if record.offset == offset else None
        return None
