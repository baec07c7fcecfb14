"""Group commit: batched saves, and each command's own outcome when a batch conflicts."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from commands.group_commit import GroupCommitter


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
        except IntegrityError as exc:
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


def test_other_errors_reach_every_caller_of_the_batch() -> None:
    def broken(events: Sequence[Any]) -> list[Any]:
        raise OSError("database unreachable")

    committer = GroupCommitter(broken)
    with pytest.raises(OSError, match="unreachable"):
        committer.save(["e"])
    committer.close()
