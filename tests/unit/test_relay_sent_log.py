"""The relay's check that the broker still holds what it acknowledged."""

from __future__ import annotations

import pytest

from commands.relay import BrokerDataLost, SentLog


def _acked(log: SentLog, start_offset: dict[int, int], positions: list[tuple[int, int]]) -> None:
    """Acknowledge (partition, position) pairs with offsets continuing per partition."""
    sent = []
    for partition, position in positions:
        offset = start_offset.setdefault(partition, 0)
        sent.append((partition, offset, position))
        start_offset[partition] = offset + 1
    log.acknowledged(sent)


def test_growing_offsets_and_end_offsets_at_the_top_are_fine() -> None:
    log, offsets = SentLog(), {}
    _acked(log, offsets, [(0, 1), (1, 2), (0, 3)])
    _acked(log, offsets, [(1, 4), (0, 5)])
    log.check({0: 3, 1: 2})  # nothing lost
    log.check({0: 9, 1: 2})  # others wrote more: fine too


def test_an_end_offset_inside_the_last_batch_is_tansus_way_of_counting_not_a_loss() -> None:
    log, offsets = SentLog(), {}
    _acked(log, offsets, [(0, p) for p in range(1, 11)])  # one batch: offsets 0..9
    log.check({0: 1})  # Tansu 0.6 reports the last batch's base offset + 1


def test_an_end_offset_below_what_was_acknowledged_rewinds_to_before_the_first_lost_batch() -> None:
    log, offsets = SentLog(), {}
    _acked(log, offsets, [(0, 10), (0, 11)])  # offsets 0, 1 on p0
    _acked(log, offsets, [(0, 20), (1, 21)])  # offset 2 on p0, 0 on p1
    _acked(log, offsets, [(0, 30), (0, 31)])  # offsets 3, 4 on p0
    with pytest.raises(BrokerDataLost) as lost:
        log.check({0: 2, 1: 1})  # p0 lost offsets 2 to 4 (positions 20 to 31)
    assert lost.value.safe == 19


def test_an_empty_partition_rewinds_to_before_everything_sent_to_it() -> None:
    log, offsets = SentLog(), {}
    _acked(log, offsets, [(0, 5), (1, 6)])
    _acked(log, offsets, [(1, 7)])
    with pytest.raises(BrokerDataLost) as lost:
        log.check({0: 1, 1: 0})
    assert lost.value.safe == 5


def test_offsets_going_backwards_on_a_send_mean_the_log_was_recreated() -> None:
    log = SentLog()
    log.acknowledged([(0, 0, 100), (0, 1, 101), (1, 0, 102)])
    with pytest.raises(BrokerDataLost) as lost:
        log.acknowledged([(0, 0, 103)])  # a new, empty log took the old one's place
    assert lost.value.safe == 99


def test_a_loss_older_than_the_kept_checkpoints_republishes_everything() -> None:
    log, offsets = SentLog(keep=2), {}
    for position in range(1, 6):
        _acked(log, offsets, [(0, position)])
    with pytest.raises(BrokerDataLost) as lost:
        log.check({0: 1})  # offsets 1..4 lost; the checkpoints kept start at offset 3
    assert lost.value.safe == 0
