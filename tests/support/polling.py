"""Waiting for an outcome by polling a check until a deadline.

The tests never sleep a fixed time and then assert: they retry the assertion until it
holds, and at the deadline they fail with its last failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float, interval: float = 0.1) -> T:
    """`check()`'s value once it stops failing its assertions; its last failure at the deadline.

    Only an AssertionError is retried: any other exception from `check` ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)
