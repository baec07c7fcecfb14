"""A Kafka consumer loop that records its positions only after its batch's effects are durable.

One failure policy for every consumer:
- a batch whose handler raises is retried with backoff, `batch_attempts` times in all;
- then it is split, message by message; a message that still fails after
  `message_attempts` goes to the dead-letter topic with headers saying why (error, exception
  type, source `topic[partition]@offset`, attempts), and the send is confirmed before any
  offset is committed; the handler then hears of it (`on_dead_letter`) to settle what the
  message was for (inference fails and refunds the job; the projector repairs the row);
- while the handler's dependencies are down (`healthy()` is false) nothing is dead-lettered:
  the loop waits for them, since no message is at fault;
- undecodable messages are dead-lettered at once. The loop never exits on a handler error.

No consumer group: a loop reads the partitions its Assignment gives it (every partition for
the projector, a leased share for each inference member), from positions kept in PostgreSQL.
The projector saves them in its batch's own transaction; inference's are saved at most every
`commit_every` seconds while records keep coming, at once when a poll comes back empty, and
before its leases are renewed. What was handled but not yet saved when a consumer dies is
delivered again (at least once; every handler is idempotent), at most `commit_every` seconds
of it.

Short polls keep SIGTERM responsive: the first SIGTERM/Ctrl-C finishes the batch in hand,
saves its positions and ends (its leases with its session); a second Ctrl-C kills the process.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import psycopg

from consumers.assignment import Assignment
from consumers.wire import Consumer, Producer, Record, position_of
from infra.published import PublishedEvent, Undecodable, decode

log = logging.getLogger("carprice.consumer")

# Fault injection: tests install callables here by name ("<consumer>.before_commit", ...).
HOOKS: dict[str, Callable[[], None]] = {}
_RUNNING: list[BatchLoop] = []  # the loops of this process, for stop_all()


def stop_all() -> None:
    """Ask every loop of this process to stop after its batch (as a first SIGTERM does)."""
    for running in list(_RUNNING):
        running.stopping.set()


class BatchHandler:
    """What the loop hands its batches to. A handler overrides `__call__` and the hooks it
    needs; the others do nothing."""

    # the event types it is given (None: all): a message whose `event_type` header names
    # another type is committed without being decoded
    wants: frozenset[str] | None = None

    def __call__(self, events: list[PublishedEvent]) -> None:
        """Handle a batch; raising means none of its effects may be assumed."""
        raise NotImplementedError

    def healthy(self) -> bool:
        """Whether what it depends on answers; asked before a message is dead-lettered, so
        that an outage does not send good messages to the dead letters."""
        return True

    def on_dead_letter(self, event: PublishedEvent, error: BaseException) -> None:
        """Settle what a message that was dead-lettered leaves behind (refund its job, say);
        called once the dead letter is confirmed, before the offset is committed."""

    def tick(self) -> None:
        """Periodic work while the loop is idle (housekeeping; a failure is only logged)."""


class Waker(Protocol):
    """Tells an idle loop that something was published (infra.wake.PgWaker)."""

    def wait(self, timeout: float) -> bool: ...


class DeadLetterLog(Protocol):
    """Where dead letters are indexed (for `carprice dlq` and the metrics)."""

    def record(self, consumer: str, reason: str, record: Record, error: BaseException,
               attempts: int, event: PublishedEvent | None,
               dlq_place: tuple[int, int] | None) -> None: ...


@dataclass(frozen=True)
class FailurePolicy:
    """How hard to try before a message is dead-lettered."""

    batch_attempts: int = 3
    message_attempts: int = 2
    backoff_ms: int = 200
    max_backoff_ms: int = 5000
    # failures that are never the message's fault (the database restarting): the batch is
    # tried again, with backoff, for as long as they last, and nothing is dead-lettered
    transient: Callable[[BaseException], bool] = lambda _exc: False
    # after a transient failure's backoff, before the retry: heal what it broke (the pools'
    # connections a database restart ended)
    recover: Callable[[], None] = lambda: None

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try `attempt + 1` (exponential, jittered, capped)."""
        base = min(self.max_backoff_ms, self.backoff_ms * 2 ** max(0, attempt - 1)) / 1000
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


TRANSIENT_RETRY_MAX_S = 1.0


@dataclass(frozen=True)
class LoopSettings:
    """How a loop polls, batches, idles and saves its positions."""

    max_records: int = 500  # per batch
    batch_ms: int = 20  # how long a batch may gather records after its first arrived
    idle_after: float = 1.0  # s without a record, then sleep on the waker...
    idle_poll: float = 15.0  # ...polling the broker anyway this often (a wake-up may be missed)
    commit_every: float = 1.0  # s between saves of the positions while records keep coming
    policy: FailurePolicy = FailurePolicy()


# partition -> (offset, store position) of the last message handled there
Marks = dict[int, tuple[int, int | None]]


class Committer:
    """When positions are saved: at most every `every` seconds while batches keep coming, and
    at once when `due` (an empty poll, a stop, before the leases are renewed), by `save`; with
    no `save` the handler keeps them in its own transaction (the projector)."""

    def __init__(self, name: str, every: float, save: Callable[[Marks], None] | None = None) -> None:
        self.name, self.every, self.save = name, every, save
        self.pending = False  # batches handled since the last save
        self.marks: Marks = {}  # the last message handled per partition, since then
        self.last = time.monotonic()

    def handled(self, records: list[Record]) -> None:
        """A batch was handled: save if the interval has passed."""
        self.pending = True
        if self.save is not None:
            for rec in records:  # in offset order within a partition
                self.marks[rec.partition] = (rec.offset, position_of(rec))
        self.commit(due=time.monotonic() - self.last >= self.every)

    def commit(self, due: bool) -> None:
        """Save the last message handled on each partition when something is pending and `due`."""
        if not (self.pending and due):
            return
        _hook(f"{self.name}.before_commit")
        if self.save is not None:
            try:
                self.save(self.marks)
            except psycopg.Error as exc:
                # the database is down: kept, and saved at the next commit (what a crash
                # meanwhile leaves unsaved is delivered again)
                log.warning("%s: positions not saved (%s: %s); trying again at the next commit",
                            self.name, type(exc).__name__, str(exc)[:200])
                return
        self.pending, self.marks = False, {}
        self.last = time.monotonic()


class _Stopping(Exception):
    """Stop was requested in the middle of a batch: leave it uncommitted (it is redelivered)."""


def _event_type(rec: Record) -> bytes:
    """The `event_type` header of a record (b"" when it has none)."""
    for key, value in rec.headers or ():
        if key == "event_type":
            return bytes(value or b"")
    return b""


def _where(rec: Record) -> str:
    return f"{rec.topic}[{rec.partition}]@{rec.offset}"


class BatchLoop:
    """poll -> decode -> handle a batch (retry, isolate, dead-letter) -> save positions, until
    stopped."""

    def __init__(self, name: str, consumer: Consumer, handler: BatchHandler, dlq: Producer,
                 dlq_topic: str, assignment: Assignment, settings: LoopSettings | None = None, *,
                 dead_letters: DeadLetterLog | None = None, waker: Waker | None = None,
                 save_positions: Callable[[Marks], None] | None = None) -> None:
        self.name, self.topic, self.consumer = name, assignment.topic, consumer
        self.settings = settings or LoopSettings()
        # the positions are kept by the handler in its transaction (the projector) or saved by
        # `save_positions` (inference's leases)
        self.assignment = assignment
        assignment.join(consumer)
        self.committer = Committer(name, self.settings.commit_every, save=save_positions)
        # idle: after `idle_after` s without a record, sleep on the waker (woken by the relay's
        # NOTIFY), polling the broker anyway every `idle_poll` s
        self.waker = waker
        self._last_record = time.monotonic()
        self.idle_waits = 0
        self.handler = handler
        wants = handler.wants
        # the header values to hand on (b"" stands for no header: decode it, as it may be anything)
        self._wants = None if wants is None else {t.encode() for t in wants} | {b""}
        self.skipped = 0  # messages of types the handler does not want, never decoded
        self.dlq = dlq
        self.dlq_topic = dlq_topic
        self._transient_tries = 0  # in a row: the backoff grows with them
        self.dead_letters = dead_letters
        self.stopping = threading.Event()
        self.handled = 0
        self.dead = 0

    @property
    def policy(self) -> FailurePolicy:
        """The failure policy of its settings."""
        return self.settings.policy

    def _renew(self) -> None:
        """When due: pick up new partitions, and with leases give up or take partitions as
        members come and go (after saving the positions of everything handled)."""
        if self.assignment.due():
            self.committer.commit(due=True)
            self.assignment.refresh(self.consumer)

    def run(self) -> None:
        """Consume until stop; then save the positions and close."""
        _RUNNING.append(self)
        try:
            while not self.stopping.is_set():
                records = self._collect()
                if records:
                    self.process(records)
                    self._last_record = time.monotonic()
                else:
                    self.committer.commit(due=True)  # all polled is handled
                    self._tick()
                    self._sleep_while_idle()
                self._renew()  # leases move under load too
            self.committer.commit(due=True)
        except _Stopping:
            log.info("%s: stopped in the middle of a batch; it will be delivered again", self.name)
        finally:
            _RUNNING.remove(self)
            self.consumer.close(autocommit=False)
            log.info("%s: stopped after %d events (%d dead-lettered)", self.name, self.handled,
                     self.dead)

    def _sleep_while_idle(self) -> None:
        if self.waker is None or time.monotonic() - self._last_record < self.settings.idle_after:
            return
        self.idle_waits += 1
        deadline = time.monotonic() + self.settings.idle_poll
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return  # poll once, then sleep again
            # renew the leases while asleep (members come and go); poll only on a change
            held = set(self.assignment.partitions)
            self._renew()
            if self.assignment.partitions != held:
                return
            # short slices: a stop or a lease to renew is seen soon
            if self.waker.wait(min(left, 1.0, self.assignment.refresh_seconds)):
                self._last_record = time.monotonic()  # something came: look for a while
                return

    def _tick(self) -> None:
        try:
            self.handler.tick()
        except Exception:  # noqa: BLE001 - housekeeping never stops the loop
            log.exception("%s: periodic work failed", self.name)

    def _collect(self) -> list[Record]:
        """Records of up to max_records or batch_ms after the first one arrived."""
        records: list[Record] = []
        deadline: float | None = None
        max_records = self.settings.max_records
        while not self.stopping.is_set() and len(records) < max_records:
            if deadline is None:
                timeout = 100  # short, so a stop request is seen quickly
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                timeout = int(left * 1000)
            polled = self.consumer.poll(timeout_ms=timeout,
                                        max_records=max_records - len(records))
            for batch in polled.values():
                records.extend(batch)
            if not records:
                break
            if deadline is None:
                deadline = time.monotonic() + self.settings.batch_ms / 1000
        return records

    # ------------------------------------------------------------------ one batch

    def process(self, records: list[Record]) -> None:
        """Handle polled records under the failure policy, then save their positions."""
        pairs: list[tuple[Record, PublishedEvent]] = []
        for rec in records:
            if self._wants is not None and _event_type(rec) not in self._wants:
                self.skipped += 1
                continue
            try:
                pairs.append((rec, decode(rec.value, rec.topic, rec.partition, rec.offset)))
            except Undecodable as exc:
                self._dead_letter(rec, exc, 1, None, "undecodable")
        if pairs:
            self._handle(pairs)
        self.handled += len(pairs)
        self.committer.handled(records)

    def _handle(self, pairs: list[tuple[Record, PublishedEvent]]) -> None:
        events = [e for _, e in pairs]
        attempt = 0
        while attempt < self.policy.batch_attempts:
            try:
                self.handler(events)
                self._transient_tries = 0  # the next outage starts from the shortest backoff
                return
            except Exception as exc:  # noqa: BLE001 - the policy decides what happens next
                if self._transient(exc, len(events), pairs[0][0]):
                    continue
                attempt += 1
                log.warning("%s: batch of %d from %s failed (attempt %d of %d): %s: %s",
                            self.name, len(events), _where(pairs[0][0]), attempt,
                            self.policy.batch_attempts, type(exc).__name__, exc)
                if attempt < self.policy.batch_attempts:
                    self._sleep(self.policy.delay(attempt))
        if len(pairs) > 1:
            log.warning("%s: handling the %d messages one by one", self.name, len(pairs))
        for rec, event in pairs:
            self._handle_one(rec, event)

    def _handle_one(self, rec: Record, event: PublishedEvent) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                self.handler([event])
                self._transient_tries = 0
                return
            except Exception as exc:  # noqa: BLE001 - the policy decides what happens next
                if self._transient(exc, 1, rec):
                    attempt -= 1  # not the message's fault: not one of its tries
                    continue
                if attempt < self.policy.message_attempts:
                    self._sleep(self.policy.delay(attempt))
                    continue
                if not self._healthy():
                    self._wait_until_healthy()
                    attempt = 0  # the dependency was down: the message gets its tries again
                    continue
                total = self.policy.batch_attempts + attempt
                self._dead_letter(rec, exc, total, event, "handler_error")
                return

    def _transient(self, exc: BaseException, count: int, first: Record) -> bool:
        """True (after a backoff) when `exc` is the policy's transient kind: try again."""
        if not self.policy.transient(exc):
            self._transient_tries = 0
            return False
        self._transient_tries += 1
        log.warning("%s: %d message(s) from %s wait for a dependency (%s: %s); trying again, "
                    "nothing is dead-lettered for it", self.name, count, _where(first),
                    type(exc).__name__, str(exc)[:200])
        # at most a second apart: a restarted database is found within a second of its return
        # (with the message backoff, up to 5 s, a 3 s restart cost 8 s in bench chaos)
        self._sleep(min(TRANSIENT_RETRY_MAX_S, self.policy.delay(min(self._transient_tries, 10))))
        self.policy.recover()
        return True

    # ------------------------------------------------------------------ dead letters

    def _dead_letter(self, rec: Record, exc: BaseException, attempts: int,
                     event: PublishedEvent | None, reason: str) -> None:
        """Send `rec` to the dead-letter topic (confirmed), index it, tell the handler."""
        where = _where(rec)
        log.error("%s: %s %s after %d attempt(s), sent to %s: %s: %s", self.name, where, reason,
                  attempts, self.dlq_topic, type(exc).__name__, exc)
        headers = [*(rec.headers or []),
                   ("dlq_reason", reason.encode()),
                   ("dlq_error", str(exc)[:500].encode(errors="replace")),
                   ("dlq_exception", type(exc).__name__.encode()),
                   ("dlq_source", where.encode()),
                   ("dlq_attempts", str(attempts).encode()),
                   ("dlq_consumer", self.name.encode())]
        place = self._send_confirmed(rec, headers)
        self.dead += 1
        if self.dead_letters is not None:
            self._settle(lambda: self.dead_letters.record(  # type: ignore[union-attr]
                self.name, reason, rec, exc, attempts, event, place), "index the dead letter")
        if event is not None:
            self._settle(lambda: self.handler.on_dead_letter(event, exc), "settle the dead letter")

    def _send_confirmed(self, rec: Record, headers: list[tuple[str, bytes | None]],
                        ) -> tuple[int, int] | None:
        """Send until the broker acknowledged; nothing is committed before that."""
        attempt = 0
        while True:
            attempt += 1
            try:
                _hook(f"{self.name}.dead_letter_send")
                future = self.dlq.send(self.dlq_topic, key=rec.key, value=rec.value, headers=headers)
                metadata = future.get(timeout=30)
                partition, offset = getattr(metadata, "partition", None), getattr(metadata, "offset", None)
                return (partition, offset) if partition is not None and offset is not None else None
            except Exception as exc:  # noqa: BLE001 - retried: the message must not be lost
                log.error("%s: the dead-letter send of %s failed (attempt %d): %s: %s; "
                          "not committing, retrying", self.name, _where(rec), attempt,
                          type(exc).__name__, exc)
                self._sleep(self.policy.delay(attempt))

    def _settle(self, action: Callable[[], None], what: str) -> None:
        for attempt in range(1, 4):
            try:
                action()
                return
            except Exception as exc:  # noqa: BLE001 - logged; the safety nets take over
                log.error("%s: could not %s (attempt %d): %s: %s", self.name, what, attempt,
                          type(exc).__name__, exc)
                self._sleep(self.policy.delay(attempt))

    # ------------------------------------------------------------------ waiting

    def _healthy(self) -> bool:
        try:
            return bool(self.handler.healthy())
        except Exception:  # noqa: BLE001 - a failing probe means unhealthy
            return False

    def _wait_until_healthy(self) -> None:
        log.warning("%s: a dependency of the handler is down; waiting for it (nothing is "
                    "dead-lettered meanwhile)", self.name)
        attempt = 0
        while not self._healthy():
            attempt += 1
            self._sleep(self.policy.delay(min(attempt, 10)))
        log.info("%s: the handler's dependencies are back", self.name)

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise _Stopping()


def _hook(name: str) -> None:
    hook = HOOKS.get(name)
    if hook is not None:
        hook()
