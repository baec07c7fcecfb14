"""Group commit: batched saves, and each command's own outcome when a batch conflicts."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from commands.group_commit import GroupCommitter, StoreTimeout, WriterStopped


class FakeStore:
    """Records each put; refuses any put that contains a 'conflict' event."""

    def __init__(self) -> None:
        self.puts: list[list[Any]] = []
        self.stored: list[Any] = []
        self.gate = threading.Event()

    def put(self, events: Sequence[Any]) -> list[Any]:
        self.gate.wait(5)
        self.puts.append(list(events))
        if "conflict" in events:
            raise IntegrityError("duplicate version")
        self.stored += events
        return [f"rec:{e}" for e in events]


def _save_all(committer: GroupCommitter, store: FakeStore, items: list[list[str]]) -> dict[int, Any]:
    outcomes: dict[int, Any] = {}

    def run(i: int) -> None:
        try:
            outcomes[i] = committer.save(items[i])
        except Exception as exc:  # noqa: BLE001 - each caller's own outcome is what is tested
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    store.gate.set()  # let the writer go once everyone queued
    for t in threads:
        t.join()
    return outcomes


def test_waiting_saves_share_one_put_and_get_their_own_recordings() -> None:
    store = FakeStore()
    committer = GroupCommitter(store.put)
    items = [[f"a{i}", f"b{i}"] for i in range(20)]
    outcomes = _save_all(committer, store, items)
    committer.close()
    assert len(store.puts) < 20  # batched
    assert sorted(store.stored) == sorted(e for item in items for e in item)
    for i, item in enumerate(items):
        assert outcomes[i] == [f"rec:{e}" for e in item]


def test_a_conflict_in_a_batch_fails_only_its_own_save() -> None:
    store = FakeStore()
    committer = GroupCommitter(store.put)
    items = [["x1"], ["conflict"], ["x2"], ["x3"]]
    outcomes = _save_all(committer, store, items)
    committer.close()
    assert isinstance(outcomes[1], IntegrityError)
    assert [outcomes[i] for i in (0, 2, 3)] == [["rec:x1"], ["rec:x2"], ["rec:x3"]]
    assert sorted(store.stored) == ["x1", "x2", "x3"]


class PoisonStore(FakeStore):
    """Refuses any put containing an event it cannot encode (as a lone surrogate would be)."""

    def put(self, events: Sequence[Any]) -> list[Any]:
        self.gate.wait(5)
        self.puts.append(list(events))
        if "poison" in events:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        self.stored += events
        return [f"rec:{e}" for e in events]


def test_a_command_whose_own_events_fail_fails_alone() -> None:
    store = PoisonStore()
    committer = GroupCommitter(store.put)
    items = [["x1"], ["poison"], ["x2"], ["x3", "x4"]]
    outcomes = _save_all(committer, store, items)  # type: ignore[arg-type]
    committer.close()
    assert isinstance(outcomes[1], UnicodeEncodeError)
    assert [outcomes[i] for i in (0, 2, 3)] == [["rec:x1"], ["rec:x2"], ["rec:x3", "rec:x4"]]
    assert sorted(store.stored) == ["x1", "x2", "x3", "x4"]


def test_an_unreachable_store_fails_each_caller_with_its_error() -> None:
    def broken(events: Sequence[Any]) -> list[Any]:
        raise OSError("database unreachable")

    committer = GroupCommitter(broken)
    with pytest.raises(OSError, match="unreachable"):
        committer.save(["e"])
    committer.close()


def test_a_store_that_never_answers_gives_a_clear_error_within_the_bound() -> None:
    hang = threading.Event()

    def stuck(events: Sequence[Any]) -> list[Any]:
        hang.wait(30)
        return []

    committer = GroupCommitter(stuck, timeout=0.5)
    with pytest.raises(StoreTimeout, match="did not confirm"):
        committer.save(["e"])
    hang.set()
    committer.close()


def test_after_close_a_save_is_refused_at_once() -> None:
    committer = GroupCommitter(FakeStore().put)
    committer.close()
    with pytest.raises(WriterStopped, match="shutting down"):
        committer.save(["e"])
