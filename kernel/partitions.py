"""How events are split among a subscription's partitions.

Every event is appended with a partition key (what it is about: the order id for
everything about an order, else its stream) and the key's slot, one of SLOTS. A
subscription runs as P partitions, P a divisor of SLOTS; partition p reads the slots
s with s % P == p. Events of one key share a slot, so one partition applies them, in
log order. The slot is a hash of the key that SQL computes the same way (see the
migration that added it), so it never changes for a stored event.
"""

from __future__ import annotations

import hashlib

SLOTS = 64
PARTITION_COUNTS = tuple(n for n in range(1, SLOTS + 1) if SLOTS % n == 0)


def slot_of(key: str) -> int:
    digest = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    return (int(digest[:8], 16) & 0x7FFFFFFF) % SLOTS


def partition_of(slot: int, partitions: int) -> int:
    return slot % partitions


def slots_of(partition: int, partitions: int) -> list[int]:
    """The slots partition `partition` of `partitions` reads."""
    return list(range(partition, SLOTS, partitions))


def check_count(partitions: int) -> int:
    """`partitions`, if it divides the slots evenly; else ValueError."""
    if partitions not in PARTITION_COUNTS:
        counts = ", ".join(map(str, PARTITION_COUNTS))
        raise ValueError(f"a subscription runs as one of {counts} partitions, not {partitions}")
    return partitions
