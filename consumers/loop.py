"""A Kafka consumer loop that commits only after its batch's effects are durable.

Short polls keep SIGTERM responsive: the first SIGTERM/Ctrl-C finishes the batch
in hand, commits and leaves the group; a second Ctrl-C kills the process.
Messages that are not carprice events go to the dead-letter topic (then their
offsets are committed), never into a crash loop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import ConsumerRebalanceListener
from kafka.errors import KafkaError

from infra.published import PublishedEvent, Undecodable, decode

log = logging.getLogger("carprice.consumer")
BatchHandler = Callable[[list[PublishedEvent]], None]


def crash_point(name: str) -> None:
    """Fault injection for the crash tests: SIGKILL ourselves at the named point."""
    if os.environ.get("CARPRICE_CRASH_AT") == name:
        log.warning("crash point %s reached: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)


class _LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self.name = name

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("%s: partitions revoked: %s", self.name, _parts(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("%s: partitions assigned: %s", self.name, _parts(assigned))


def _parts(partitions: Any) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)) or "none"


class BatchLoop:
    """poll -> decode -> handle a batch -> commit, until stopped."""

    def __init__(self, name: str, consumer: Any, topic: str, handler: BatchHandler, dlq: Any,
                 dlq_topic: str, max_records: int = 500, batch_ms: int = 20) -> None:
        self.name = name
        self.consumer = consumer
        # Know the topic's partitions before joining: a leader that joins without them assigns
        # nothing (seen on Apache Kafka: "No partition metadata", then idle until a refresh).
        consumer.partitions_for_topic(topic)
        consumer.subscribe([topic], listener=_LogAssignments(name))
        self.handler = handler
        self.dlq = dlq
        self.dlq_topic = dlq_topic
        self.max_records = max_records
        self.batch_ms = batch_ms
        self.stopping = threading.Event()
        self.handled = 0

    def install_signal_handlers(self) -> None:
        """First SIGTERM/SIGINT: stop after this batch. Second SIGINT: exit at once."""
        def first(signum: int, _frame: Any) -> None:
            log.info("%s: signal %d, finishing the batch and leaving the group", self.name, signum)
            self.stopping.set()
            signal.signal(signal.SIGINT, lambda *_: os._exit(130))

        signal.signal(signal.SIGTERM, first)
        signal.signal(signal.SIGINT, first)

    def run(self) -> None:
        """Consume until stop; then commit and close (leaving the group)."""
        try:
            while not self.stopping.is_set():
                records = self._collect()
                if records:
                    self._process(records)
        finally:
            self.consumer.close(autocommit=False)
            log.info("%s: stopped after %d events", self.name, self.handled)

    def _collect(self) -> list[Any]:
        """Records of up to max_records or batch_ms after the first one arrived."""
        records: list[Any] = []
        deadline: float | None = None
        while not self.stopping.is_set() and len(records) < self.max_records:
            if deadline is None:
                timeout = 100  # short, so a stop request is seen quickly
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout = int(left * 1000)
            polled = self.consumer.poll(timeout_ms=timeout,
                                        max_records=self.max_records - len(records))
            for batch in polled.values():
                records.extend(batch)
            if not records:
                break
            if deadline is None:
                deadline = time.monotonic() + self.batch_ms / 1000
        return records

    def _process(self, records: list[Any]) -> None:
        events: list[PublishedEvent] = []
        dead = 0
        for rec in records:
            try:
                events.append(decode(rec.value))
            except Undecodable as exc:
                log.error("%s: %s[%d]@%d undecodable, sent to %s: %s", self.name, rec.topic,
                          rec.partition, rec.offset, self.dlq_topic, exc)
                headers = [*(rec.headers or []), ("error", str(exc)[:500].encode()),
                           ("source", f"{rec.topic}[{rec.partition}]@{rec.offset}".encode())]
                self.dlq.send(self.dlq_topic, key=rec.key, value=rec.value, headers=headers)
                dead += 1
        if dead:
            self.dlq.flush(timeout=30)
        if events:
            self.handler(events)
        self.handled += len(events)
        crash_point(f"{self.name}.before_commit")
        try:
            self.consumer.commit()
        except KafkaError as exc:
            # A rebalance during the batch (CommitFailed, RebalanceInProgress, ...): the
            # records are redelivered to their new owner; handlers are idempotent.
            first = records[0]
            log.warning("%s: commit failed after %s[%d]@%d: %s", self.name, first.topic,
                        first.partition, first.offset, exc)
