"""The relay: the event store's notification log, published to Kafka in order.

At-least-once: a batch is sent, the broker acknowledges every message (acks=all,
idempotent producer), and only then is the position saved. A crash between the
two republishes the batch; consumers are idempotent. One relay is active at a
time (a PostgreSQL advisory lock); a second one waits to take over.

It also makes sure the broker still holds what it acknowledged: offsets on a partition only
grow, so an acknowledged offset at or below one acknowledged before, or an end offset below
the highest one sent, means the broker lost messages (a restarted memory-only broker, a
recreated topic, a truncated log). The relay then republishes from the last position it knows
to be safe. Broker errors never stop it: it backs off and starts again from its position.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from kafka.errors import KafkaError

from infra.eventstore import subscribe
from infra.kafka_client import BrokerUnavailable
from infra.pg import reconnecting
from infra.published import encode, from_notification

if TYPE_CHECKING:
    from eventsourcing.persistence import Notification
    from kafka import KafkaProducer

    from commands.write_side import WriteSide

    Inbox = queue.Queue[Notification | Exception]

log = logging.getLogger("carprice.relay")
BATCH = 500
PUBLISHED_CHANNEL = "carprice_published"  # NOTIFY after each batch: wakes idle consumers


class BrokerDataLost(RuntimeError):
    """The broker no longer holds messages it acknowledged."""

    def __init__(self, safe: int, why: str) -> None:
        super().__init__(why)
        self.safe = safe


class SentLog:
    """What the broker acknowledged, per partition: enough to tell what a loss took.

    For each partition: the highest offset acknowledged, and checkpoints (offset, position)
    of where each batch started on it. Every message at or after a checkpoint's offset has a
    position at or after the checkpoint's (the relay publishes in log order).

    End offsets are compared with the first offset of the last batch, not the highest one:
    Tansu 0.6 reports a partition's end as the base offset of its last record batch + 1, not
    past its last record. A broker that still holds that batch reports at least that much.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self.high: dict[int, int] = {}
        self.marks: dict[int, deque[tuple[int, int]]] = {}

    def acknowledged(self, sent: list[tuple[int, int, int]]) -> None:
        """Note (partition, offset, position) of acknowledged sends; raise on a regression."""
        regressed: dict[int, int] = {}
        firsts: dict[int, tuple[int, int]] = {}
        for partition, offset, position in sent:
            if partition in self.high and offset <= self.high[partition] and partition not in firsts:
                regressed[partition] = min(offset, regressed.get(partition, offset))
            firsts.setdefault(partition, (offset, position))
        if regressed:
            raise BrokerDataLost(self._safe(regressed), "acknowledged offsets went backwards on "
                                 f"partitions {sorted(regressed)}: the broker lost messages")
        for partition, (offset, position) in firsts.items():
            self.marks.setdefault(partition, deque(maxlen=self.keep)).append((offset, position))
        for partition, offset, _ in sent:
            self.high[partition] = max(offset, self.high.get(partition, -1))

    def check(self, end_offsets: Mapping[int, int]) -> None:
        """Raise BrokerDataLost when a partition ends below what was acknowledged on it."""
        last_batch = {p: marks[-1][0] for p, marks in self.marks.items() if marks}
        short = {p: end for p, first in last_batch.items()
                 if (end := end_offsets.get(p, 0)) < first + 1}
        if short:
            where = ", ".join(f"[{p}] ends at {end}, offsets up to {self.high[p]} were acknowledged"
                              for p, end in sorted(short.items()))
            raise BrokerDataLost(self._safe(short), f"partitions end below what the broker "
                                 f"acknowledged ({where}): it lost messages")

    def _safe(self, lost_from: Mapping[int, int]) -> int:
        """The position after which everything is republished to recover messages at or after
        these offsets (0 when they are older than the checkpoints kept)."""
        safe: int | None = None
        for partition, offset in lost_from.items():
            before = [pos for off, pos in self.marks.get(partition, ()) if off <= offset]
            candidate = before[-1] - 1 if before else 0
            safe = candidate if safe is None else min(safe, candidate)
        return max(0, safe or 0)


class Follower(Protocol):
    """Where the relay keeps its position and takes its turn (infra.positions.Follower)."""

    def __enter__(self) -> Follower: ...
    def __exit__(self, *_: object) -> None: ...
    def lead(self, stopping: threading.Event) -> bool: ...
    def position(self) -> int: ...
    def advance(self, to: int) -> None: ...
    def rewind(self, to: int) -> None: ...
    def announce(self, channel: str, payload: str) -> None: ...


class Relay:
    """Tails the store (LISTEN/NOTIFY subscription) and publishes batches to one topic."""

    def __init__(self, app: WriteSide, follower: Follower, topic: str,
                 producer: Callable[[], KafkaProducer], end_offsets: Callable[[], Mapping[int, int]],
                 prepare: Callable[[], None] = lambda: None,
                 rewind_to: int | None = None, check_every: float = 5.0,
                 backoff: float = 0.5) -> None:
        self.app = app
        self.backoff = backoff  # the first wait after a broker error; it doubles, up to 30 s
        self.follower = follower
        self.topic = topic
        self.name = topic
        self.make_producer = producer
        self.end_offsets = end_offsets  # partition -> end offset of the topic, from the broker
        self.prepare = prepare  # wait for the broker and (re)create the topics
        self.rewind_to = rewind_to  # a replay asked for on the command line
        self.check_every = check_every
        self.stopping = threading.Event()
        self.published = 0
        self.losses = 0

    def run(self) -> None:
        """Publish until stop() is called; wait for the leader lock first. A database that
        goes away (a restart, a failover) ends the session and the lock with it: the relay
        connects again, leads again and resumes from its saved position, in-process."""
        reconnecting(f"relay {self.name}", self.stopping, self._lead_and_publish,
                     recover=self.app.discard_broken_connections)

    def _lead_and_publish(self) -> None:
        with self.follower as follower:
            if not follower.lead(self.stopping):
                return
            if self.rewind_to is not None:
                log.warning("relay %s: replay requested: publishing again after position %d",
                            self.name, self.rewind_to)
                follower.rewind(self.rewind_to)
            failures = 0
            while not self.stopping.is_set():
                try:
                    self.prepare()
                    producer = self.make_producer()
                    try:
                        self._publish_loop(follower, producer)
                        failures = 0
                    finally:
                        _close(producer)
                except BrokerDataLost as lost:
                    self.losses += 1
                    log.warning("relay %s: %s; broker data lost: republishing after position %d",
                                self.name, lost, lost.safe)
                    follower.rewind(lost.safe)
                except (KafkaError, OSError, BrokerUnavailable) as exc:
                    failures += 1
                    delay = min(30.0, self.backoff * 2 ** min(failures, 6))
                    log.warning("relay %s: broker error (%s: %s); starting again from the saved "
                                "position in %.1f s", self.name, type(exc).__name__, exc, delay)
                    self.stopping.wait(delay)

    def stop(self) -> None:
        """Ask the loop to stop after the batch in flight."""
        self.stopping.set()

    def _publish_loop(self, follower: Follower, producer: KafkaProducer) -> None:
        position = follower.position()
        if position > 0 and sum(self.end_offsets().values()) == 0:
            # Offsets only grow, even past retention: an empty topic behind a saved position
            # means the broker lost its data (e.g. Tansu's memory storage restarted).
            raise BrokerDataLost(0, f"the broker has no message although position {position} "
                                 "was acknowledged")
        log.info("relay %s: resuming after position %d", self.name, position)
        sent = SentLog()
        inbox: Inbox = queue.Queue(maxsize=10 * BATCH)
        subscription = subscribe(self.app.recorder, gt=position)
        feeder = threading.Thread(target=self._feed, args=(subscription, inbox), daemon=True)
        feeder.start()
        checked = last_log = time.monotonic()
        logged_position = -1
        try:
            while not self.stopping.is_set():
                batch = self._take_batch(inbox)
                if batch:
                    sent.acknowledged(self._publish(producer, batch))
                    position = int(batch[-1].id)
                    follower.advance(position)
                    follower.announce(PUBLISHED_CHANNEL, self.topic)
                    self.published += len(batch)
                now = time.monotonic()
                if now - checked > self.check_every:
                    checked = now
                    sent.check(self.end_offsets())
                if now - last_log > 10 and position != logged_position:
                    last_log, logged_position = now, position
                    self._log_lag(position)
        finally:
            subscription.stop()

    def _feed(self, subscription: Iterable[Notification], inbox: Inbox) -> None:
        try:
            for notification in subscription:
                inbox.put(notification)
        except Exception as exc:  # noqa: BLE001 - surfaced through the inbox
            inbox.put(exc)

    def _take_batch(self, inbox: Inbox) -> list[Notification]:
        try:
            first = inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        errors = [b for b in batch if isinstance(b, Exception)]
        if errors:
            raise errors[0]
        return [b for b in batch if not isinstance(b, Exception)]

    def _publish(self, producer: KafkaProducer, batch: list[Notification]) -> list[tuple[int, int, int]]:
        """Send a batch; (partition, offset, position) of each message once all are acknowledged."""
        transcoder = self.app.mapper.transcoder
        futures = []
        for notification in batch:
            key, value, headers = encode(from_notification(notification, transcoder))
            futures.append((producer.send(self.topic, key=key, value=value, headers=headers),
                            int(notification.id)))
        producer.flush(timeout=30)
        acked = []
        for future, position in futures:
            metadata = future.get(timeout=30)  # raises if the broker did not acknowledge
            acked.append((int(metadata.partition), int(metadata.offset), position))
        return acked

    def _log_lag(self, position: int) -> None:
        head = self.app.head_position()
        log.info("relay %s: position %d, store head %d, lag %d events, published %d",
                 self.name, position, head, head - position, self.published)


def _close(producer: KafkaProducer) -> None:
    try:
        producer.flush(timeout=10)
        producer.close(timeout=10)
    except Exception as exc:  # noqa: BLE001 - closing a producer of a broker that is gone
        log.debug("relay: closing the producer: %s", exc)
