"""Partition arithmetic, transaction ids widened to 64 bits, consistency tokens."""

from __future__ import annotations

import pytest

from kernel.event_store import Checkpoint, ConsistencyToken
from kernel.horizon import widen
from kernel.partitions import PARTITION_COUNTS, SLOTS, check_count, partition_of, slots_of
from kernel.subscriptions import _covering


@pytest.mark.parametrize("count", PARTITION_COUNTS)
def test_every_slot_belongs_to_exactly_one_partition(count: int) -> None:
    owned = [slot for partition in range(count) for slot in slots_of(partition, count)]
    assert sorted(owned) == list(range(SLOTS))
    assert all(partition_of(slot, count) == slot % count for slot in range(SLOTS))


def test_a_count_must_divide_the_slots() -> None:
    assert check_count(8) == 8
    with pytest.raises(ValueError, match="not 3"):
        check_count(3)


@pytest.mark.parametrize(
    ("partition", "of", "count", "covering"),
    [
        (None, 4, 4, [0, 1, 2, 3]),
        (3, 4, 4, [3]),
        (3, 4, 1, [0]),  # recorded with fewer: the one holding those slots
        (3, 4, 2, [1]),
        (1, 2, 8, [1, 3, 5, 7]),  # recorded with more: each holding some of them
    ],
)
def test_a_job_counted_with_another_partition_count_drains_the_same_slots(
    partition: int | None, of: int, count: int, covering: list[int]
) -> None:
    assert _covering(partition, of, count) == covering
    if partition is not None:
        wanted = set(slots_of(partition, of))
        drained = {slot for p in covering for slot in slots_of(p, count)}
        assert wanted <= drained


@pytest.mark.parametrize(
    ("xid", "xmax", "widened"),
    [
        (100, 200, 100),
        (199, 200, 199),
        (250, 200, 200),  # assigned after the snapshot: holds nothing back
        ((1 << 32) - 10, (1 << 32) + 5, (1 << 32) - 10),  # the epoch turned since
        (3, (5 << 32) + 7, (5 << 32) + 3),
    ],
)
def test_a_32_bit_transaction_id_is_widened_against_a_recent_xmax(
    xid: int, xmax: int, widened: int
) -> None:
    assert widen(xid, xmax) == widened


def test_a_consistency_token_names_its_slot_and_reads_as_a_checkpoint() -> None:
    token = ConsistencyToken(Checkpoint(17, 4), 63)
    assert str(token) == "17.4.63"
    assert ConsistencyToken.parse("17.4.63") == token
    assert ConsistencyToken.parse("17.4") == ConsistencyToken(Checkpoint(17, 4), None)
    assert Checkpoint.parse("17.4.63") == Checkpoint(17, 4)
    with pytest.raises(ValueError):
        ConsistencyToken.parse("17.4.64")
