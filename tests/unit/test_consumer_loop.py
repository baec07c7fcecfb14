"""The consumers' one failure policy, on BatchLoop with a fake consumer and producer."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from consumers.assignment import Assignment
from consumers.loop import BatchHandler, BatchLoop, FailurePolicy, LoopSettings
from infra.published import PublishedEvent, encode
from tests.fakes import FakeConsumer, FakeDeadLetterLog, FakeProducer, Record
from tests.procs import wait_for

FAST = FailurePolicy(batch_attempts=3, message_attempts=2, backoff_ms=1, max_backoff_ms=2)
USER = "9b1e6f3c-0000-4000-8000-000000000001"


def _record(offset: int, kind: str = "job.requested.v1", poison: bool = False) -> Record:
    from datetime import UTC, datetime

    event = PublishedEvent(type=kind, position=offset + 1,
                           aggregate_id=f"00000000-0000-4000-8000-{offset:012d}", aggregate_version=1,
                           timestamp=datetime.now(UTC), user_id=USER,
                           data={"poison": poison})
    key, value, headers = encode(event)
    return Record(value, offset, key=key, headers=headers)


class Handler(BatchHandler):
    """Fails any batch holding a poison event; counts calls; notes what it handled."""

    def __init__(self, journal: list[str], down_for: int = 0, back_after_probes: int = 3) -> None:
        self.journal = journal
        self.calls = 0
        self.probes = 0
        self.handled: list[int] = []
        self.dead: list[tuple[int, str]] = []
        self.down_for = down_for  # calls during which the "database" is down...
        self.back_after_probes = back_after_probes  # ...unless it comes back after health probes

    def __call__(self, events: list[PublishedEvent]) -> None:
        self.calls += 1
        if self.calls <= self.down_for:
            raise ConnectionError("database unreachable")
        if any(e.data.get("poison") for e in events):
            raise ValueError("cannot apply this one")
        self.handled += [e.offset or 0 for e in events]
        self.journal.append(f"handled {[e.offset for e in events]}")

    def healthy(self) -> bool:
        if self.calls < self.down_for:
            self.probes += 1
            if self.probes < self.back_after_probes:
                return False
            self.down_for = 0  # the database is back
        return True

    def on_dead_letter(self, event: PublishedEvent, error: BaseException) -> None:
        self.dead.append((event.offset or 0, type(error).__name__))
        self.journal.append(f"settled {event.offset}")


Fixture = tuple[BatchLoop, FakeConsumer, FakeProducer, FakeDeadLetterLog]


def _new(name: str, consumer: FakeConsumer, handler: Any, producer: FakeProducer,
         settings: LoopSettings, **kwargs: Any) -> BatchLoop:
    """A loop reading t.events by assignment, saving its positions with the fake consumer."""
    assignment = Assignment(name, "t.events", lambda: {}, **kwargs.pop("assignment_args", {}))
    return BatchLoop(name, consumer, handler, producer, "t.events.dlq", assignment, settings,
                     save_positions=consumer.save, **kwargs)


def _loop(batches: list[list[Record]], handler: Any, producer: FakeProducer | None = None,
          journal: list[str] | None = None) -> Fixture:
    journal = journal if journal is not None else handler.journal
    consumer = FakeConsumer(batches, journal)
    producer = producer or FakeProducer(journal=journal)
    log = FakeDeadLetterLog()
    loop = _new("projector", consumer, handler, producer, LoopSettings(policy=FAST), dead_letters=log)
    return loop, consumer, producer, log


def _drain(loop: BatchLoop, consumer: FakeConsumer) -> None:
    while consumer.batches:
        records = loop._collect()  # noqa: SLF001 - one poll at a time, as run() does
        if records:
            loop.process(records)
    loop.committer.commit(due=True)  # as run() does when a poll comes back empty


def test_a_batch_that_fails_once_is_retried_and_nothing_is_dead_lettered() -> None:
    journal: list[str] = []
    handler = Handler(journal, down_for=1)
    loop, consumer, producer, log = _loop([[_record(0), _record(1)]], handler)
    _drain(loop, consumer)
    assert handler.handled == [0, 1] and producer.sent == [] and log.rows == []
    assert consumer.committed == [1]


def test_a_poison_message_is_isolated_dead_lettered_with_why_and_the_others_are_handled() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    batch = [_record(0), _record(1, poison=True), _record(2)]
    loop, consumer, producer, log = _loop([batch], handler)
    _drain(loop, consumer)
    assert handler.handled == [0, 2]
    assert handler.calls == FAST.batch_attempts + 1 + FAST.message_attempts + 1
    (topic, key, value, headers), = producer.sent
    assert topic == "t.events.dlq" and value == batch[1].value and key == batch[1].key
    assert headers["dlq_source"] == b"t.events[0]@1"
    assert headers["dlq_exception"] == b"ValueError" and b"cannot apply" in headers["dlq_error"]
    assert headers["dlq_attempts"] == b"5" and headers["dlq_consumer"] == b"projector"
    assert headers["event_type"] == b"job.requested.v1"  # the original headers are kept
    assert handler.dead == [(1, "ValueError")]
    assert log.rows == [("projector", "handler_error", 1, 5, (0, 0))]
    # the dead letter was confirmed and settled before the offsets were committed
    assert journal.index("sent t.events.dlq") < journal.index("settled 1") < journal.index("commit 2")


def test_a_failed_dead_letter_send_is_retried_and_nothing_is_committed_before_it_succeeds() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    producer = FakeProducer(fail_first=3, journal=journal)
    loop, consumer, _, _ = _loop([[_record(0, poison=True)]], handler, producer)
    _drain(loop, consumer)
    assert len(producer.sent) == 1 and producer.fail_first == 0
    assert journal == ["sent t.events.dlq", "settled 0", "commit 0"]


def test_while_a_dependency_is_down_nothing_is_dead_lettered() -> None:
    journal: list[str] = []
    handler = Handler(journal, down_for=1000)  # longer than every attempt of the policy
    loop, consumer, producer, _ = _loop([[_record(0), _record(1)]], handler)
    _drain(loop, consumer)
    assert handler.probes == 3  # it waited for the database, then went on
    assert producer.sent == [] and handler.handled == [0, 1]
    assert consumer.committed == [1]


def test_an_undecodable_message_is_dead_lettered_at_once_and_the_batch_goes_on() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    garbage = Record(b"\x00not json", 0)
    loop, consumer, producer, log = _loop([[garbage, _record(1)]], handler)
    _drain(loop, consumer)
    assert handler.handled == [1] and handler.calls == 1
    assert producer.sent[0][3]["dlq_reason"] == b"undecodable"
    assert log.rows[0][:2] == ("projector", "undecodable")
    assert consumer.committed == [1]


def test_the_loop_keeps_going_after_a_message_it_cannot_handle() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    loop, consumer, producer, _ = _loop([[_record(0, poison=True)], [_record(1)], [_record(2)]], handler)
    thread = threading.Thread(target=loop.run)
    thread.start()
    wait_for(lambda: consumer.committed and consumer.committed[-1] == 2, timeout=10,
             interval=0.01, what="the last batch committed")
    loop.stopping.set()
    thread.join(5)
    assert handler.handled == [1, 2] and len(producer.sent) == 1
    assert consumer.committed[-1] == 2 and consumer.closed


def test_under_load_offsets_are_committed_once_per_interval_and_at_once_when_the_topic_runs_dry(
) -> None:
    journal: list[str] = []
    handler = Handler(journal)
    batches = [[_record(i)] for i in range(5)]
    loop, consumer, _, _ = _loop(batches, handler)
    loop.committer.every, loop.settings = 3600.0, replace(loop.settings, batch_ms=0)
    for _ in range(5):  # five polls in a row, each bringing a batch
        loop.process(loop._collect())  # noqa: SLF001 - one poll at a time, as run() does
    assert handler.handled == [0, 1, 2, 3, 4] and consumer.committed == []
    loop.committer.every = 0.0
    thread = threading.Thread(target=loop.run)
    thread.start()  # the next poll comes back empty: everything handled is committed
    wait_for(lambda: consumer.committed == [4], timeout=10, interval=0.01, what="the commit")
    loop.stopping.set()
    thread.join(5)
    assert consumer.committed == [4] and consumer.closed  # nothing new: no second commit


def test_with_no_interval_every_batch_is_committed_when_handled() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    loop, consumer, _, _ = _loop([[_record(0)], [_record(1)]], handler)
    loop.committer.every, loop.settings = 0.0, replace(loop.settings, batch_ms=0)  # one poll, one batch
    loop.process(loop._collect())  # noqa: SLF001
    loop.process(loop._collect())  # noqa: SLF001
    assert consumer.committed == [0, 1]


def test_a_stop_commits_what_was_handled_before_leaving() -> None:
    journal: list[str] = []
    handler = Handler(journal)
    loop, consumer, _, _ = _loop([[_record(0)], [_record(1)]], handler)
    loop.committer.every = 3600.0

    class StopAfterTwo(Handler):
        def __call__(self, events: list[PublishedEvent]) -> None:
            super().__call__(events)
            if len(self.handled) == 2:
                loop.stopping.set()  # SIGTERM after the second batch

    loop.handler = StopAfterTwo(journal)
    loop.run()
    assert loop.handler.handled == [0, 1] and consumer.committed == [1] and consumer.closed


def test_a_stop_during_retries_leaves_the_batch_uncommitted() -> None:
    journal: list[str] = []

    class Failing(Handler):
        def __call__(self, events: list[PublishedEvent]) -> None:
            self.calls += 1
            loop.stopping.set()  # SIGTERM arrives while the batch is failing
            raise ValueError("boom")

    handler = Failing(journal)
    loop, consumer, producer, _ = _loop([[_record(0)]], handler)
    loop.run()
    assert consumer.committed == [] and producer.sent == [] and consumer.closed


class _Waker:
    """The relay's NOTIFY, as a threading.Event; counts the waits."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.waits = 0

    def wait(self, timeout: float) -> bool:
        self.waits += 1
        woken = self.event.wait(timeout)
        self.event.clear()
        return woken


class _CountingConsumer(FakeConsumer):
    def __init__(self) -> None:
        super().__init__([])
        self.polls = 0

    def poll(self, timeout_ms: int = 0, max_records: int = 500) -> dict[str, list[Record]]:
        self.polls += 1
        return super().poll(timeout_ms, max_records)


def test_an_idle_loop_stops_fetching_and_sleeps_until_something_is_published() -> None:
    consumer, waker, handler = _CountingConsumer(), _Waker(), Handler([])
    loop = _new("inference", consumer, handler, FakeProducer(),
                LoopSettings(policy=FAST, idle_after=0.0, idle_poll=60.0), waker=waker)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        wait_for(lambda: waker.waits > 0, timeout=10, interval=0.01, what="the loop to fall asleep")
        asleep_at = consumer.polls
        threading.Event().wait(0.3)
        assert consumer.polls == asleep_at  # asleep: not one fetch from the broker
        consumer.batches.append([_record(0)])
        waker.event.set()  # the relay published something
        wait_for(lambda: handler.handled == [0], timeout=10, interval=0.01, what="the batch after waking")
    finally:
        loop.stopping.set()
        thread.join(5)
    assert not thread.is_alive() and consumer.committed == [0]


def test_without_a_waker_an_idle_loop_keeps_fetching() -> None:
    consumer = _CountingConsumer()
    loop = _new("inference", consumer, Handler([]), FakeProducer(), LoopSettings(policy=FAST, idle_after=0.0))
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        wait_for(lambda: consumer.polls > 20, timeout=10, interval=0.01, what="fetches")
    finally:
        loop.stopping.set()
        thread.join(5)
    assert loop.idle_waits == 0


def test_without_a_collect_window_a_batch_is_what_one_poll_brought_and_with_one_what_came_in_it() -> None:
    """INFERENCE_BATCH_MS=0 (the default): records already polled are handled at once, not held
    back waiting for more; a window gathers the polls that come within it."""
    from infra.settings import Settings

    defaults = {name: f.default for name, f in Settings.model_fields.items()}
    assert defaults["inference_batch_ms"] == 0 and defaults["projector_batch_ms"] == 0
    for window, expected in [(0, [[0, 1], [2]]), (1000, [[0, 1, 2]])]:
        consumer = FakeConsumer([[_record(0), _record(1)], [_record(2)]])
        loop = _new("inference", consumer, Handler([]), FakeProducer(),
                    LoopSettings(batch_ms=window, policy=FAST), dead_letters=FakeDeadLetterLog())
        batches = []
        while consumer.batches:
            batches.append([r.offset for r in loop._collect()])  # noqa: SLF001 - as run() does
        assert batches == expected


class Picky(Handler):
    """Wants job requests only, as inference does."""

    wants = frozenset({"job.requested.v1"})


def test_a_handler_that_wants_some_types_gets_only_those_and_the_rest_is_committed_undecoded(
        ) -> None:
    journal: list[str] = []
    handler = Picky(journal)
    other = Record(b"not even json", 1, headers=[("event_type", b"wallet.captured.v1")])
    headless = Record(b"not json either", 3)  # no header: it may be anything, so it is decoded
    batch = [_record(0), other, _record(2), headless]
    loop, consumer, producer, log = _loop([batch], handler)
    _drain(loop, consumer)
    assert handler.handled == [0, 2] and loop.skipped == 1
    assert [row[1] for row in log.rows] == ["undecodable"] and len(producer.sent) == 1  # the headless one
    assert consumer.committed == [3]


def test_a_database_restart_is_waited_out_and_never_dead_letters_a_message() -> None:
    """While the database restarts every try fails on a dead session; that is no message's
    fault: the batch is tried again until it passes, and nothing goes to the dead letters."""
    import psycopg
    from eventsourcing.persistence import OperationalError

    from infra.pg import database_unreachable

    class Restarting(Handler):
        def __call__(self, events: list[PublishedEvent]) -> None:
            self.calls += 1
            if self.calls <= 12:  # more tries than the policy gives a message
                try:
                    raise psycopg.errors.AdminShutdown("terminating connection")
                except psycopg.Error as exc:
                    raise OperationalError(str(exc)) from exc
            super().__call__(events)

    handler = Restarting([])
    policy = FailurePolicy(batch_attempts=3, message_attempts=2, backoff_ms=1, max_backoff_ms=2,
                           transient=database_unreachable)
    consumer = FakeConsumer([[_record(0), _record(1)]], handler.journal)
    log = FakeDeadLetterLog()
    producer = FakeProducer(journal=handler.journal)
    loop = _new("inference", consumer, handler, producer, LoopSettings(policy=policy), dead_letters=log)
    _drain(loop, consumer)
    assert handler.handled == [0, 1] and producer.sent == [] and handler.dead == []


def test_after_a_transient_failure_the_policy_heals_the_connections_before_the_retry() -> None:
    """Ten dead sessions in the pool: without the policy's recover hook every retry takes the
    next one; with it the first retry succeeds."""
    import psycopg

    from infra.pg import database_unreachable

    dead = [10]
    failed = [0]

    class Pooled(Handler):
        def __call__(self, events: list[PublishedEvent]) -> None:
            if dead[0]:
                dead[0] -= 1
                failed[0] += 1
                raise psycopg.errors.AdminShutdown("terminating connection")
            super().__call__(events)

    def recover() -> None:
        dead[0] = 0

    handler = Pooled([])
    policy = FailurePolicy(batch_attempts=3, message_attempts=2, backoff_ms=1, max_backoff_ms=2,
                           transient=database_unreachable, recover=recover)
    consumer = FakeConsumer([[_record(0), _record(1)]], handler.journal)
    loop = _new("inference", consumer, handler, FakeProducer(journal=handler.journal),
                LoopSettings(policy=policy), dead_letters=FakeDeadLetterLog())
    _drain(loop, consumer)
    assert handler.handled == [0, 1] and failed == [1]


def test_only_a_lost_connection_is_transient_not_a_statement_that_failed() -> None:
    import psycopg
    from eventsourcing.persistence import OperationalError
    from psycopg_pool import PoolTimeout

    from infra.pg import database_unreachable

    def wrapped(exc: Exception) -> Exception:
        try:
            raise exc
        except Exception as inner:  # noqa: BLE001 - the event store's wrapping
            try:
                raise OperationalError(str(inner)) from inner
            except OperationalError as outer:
                return outer

    assert database_unreachable(psycopg.errors.AdminShutdown())
    assert database_unreachable(psycopg.OperationalError("connection refused"))
    assert database_unreachable(PoolTimeout("no connection in 30 s"))
    assert database_unreachable(wrapped(psycopg.errors.ConnectionFailure()))
    assert not database_unreachable(psycopg.errors.LockNotAvailable())  # a lock timeout
    assert not database_unreachable(wrapped(psycopg.errors.QueryCanceled()))
    assert not database_unreachable(ValueError("a poison message"))


def test_a_process_cycle_runs_again_when_the_database_goes_away_and_stops_when_asked() -> None:
    import psycopg

    from infra.pg import reconnecting

    stopping, calls = threading.Event(), []

    def cycle() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    stopping.wait = lambda timeout=None: False  # type: ignore[method-assign] - no real backoff
    healed: list[int] = []
    reconnecting("relay", stopping, cycle, recover=lambda: healed.append(len(calls)))
    assert len(calls) == 3  # failed twice on a lost database, then ran to its end
    assert healed == [1, 2]  # its pools' dead sessions dropped before each new cycle

    def bug() -> None:
        raise KeyError("not the database")

    with pytest.raises(KeyError):  # anything else is not waited out
        reconnecting("relay", threading.Event(), bug)


class _Leases:
    """A member's leases: partitions 0 and 1, then only 0 from its second renewal on (another
    member joined)."""

    def __init__(self, journal: list[str]) -> None:
        self.held, self.journal, self.renewals = {0, 1}, journal, 0

    def balance(self, partitions: set[int]) -> set[int]:
        self.renewals += 1
        if self.renewals == 2:
            self.held = {0}
            self.journal.append("gave up 1")
        return set(self.held)


class _TwoPartitions(_CountingConsumer):
    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1}


def test_positions_are_saved_before_a_lease_is_given_up() -> None:
    """A partition given up is read next by another member, from the position saved for it:
    everything handled there is saved first, or it would be handled twice."""
    from kafka import TopicPartition

    journal: list[str] = []
    consumer, leases = _TwoPartitions(), _Leases(journal)
    consumer.journal = journal
    consumer.batches.append([_record(0), Record(_record(1).value, 5, partition=1)])
    loop = _new("inference", consumer, Handler(journal), FakeProducer(), LoopSettings(policy=FAST),
                assignment_args={"refresh_seconds": 0.0, "leases": leases})
    assert consumer.assigned == [TopicPartition("t.events", 0), TopicPartition("t.events", 1)]
    loop.committer.every = 3600.0  # under load: no save of its own
    loop.process(loop._collect())  # noqa: SLF001 - one poll, as run() does
    loop._renew()  # noqa: SLF001 - what run() does after each poll
    assert journal == ["handled [0, 5]", "commit 5", "gave up 1"]
    assert consumer.assigned == [TopicPartition("t.events", 0)]


def test_an_idle_loop_renews_its_leases_without_fetching() -> None:
    consumer, waker, leases = _CountingConsumer(), _Waker(), _Leases([])
    leases.held = {0}
    loop = _new("inference", consumer, Handler([]), FakeProducer(),
                LoopSettings(policy=FAST, idle_after=0.0, idle_poll=60.0), waker=waker,
                assignment_args={"refresh_seconds": 0.01, "leases": leases})
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        wait_for(lambda: waker.waits > 0, timeout=10, interval=0.01, what="the loop to fall asleep")
        asleep_at, renewed = consumer.polls, leases.renewals
        threading.Event().wait(0.3)
        assert leases.renewals > renewed + 5  # members may come and go while it sleeps...
        assert consumer.polls == asleep_at  # ...and the broker hears nothing of it
    finally:
        loop.stopping.set()
        thread.join(5)
