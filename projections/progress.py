"""One watcher per process for every query waiting on a consistency token.

A query given a token its read model has not applied yet waits, bounded, for the read
model to move on. Each waiting query polling the database itself made the cost of a wait
grow with the number of waiters (a handful of clients sending tokens in a loop slowed
every other request). Here one thread reads the positions of the read models somebody is
waiting for, once per interval, and wakes the waiters to check them: the database sees
the same queries with one waiter or a hundred, and none while nobody waits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("projections.progress")

Position = TypeVar("Position")


class ProgressWatch(Generic[Position]):
    """Reads `read(names)` for the names waited on, every `interval` seconds while any
    query waits, and hands each waiter the newest reading of its name."""

    def __init__(self, read: Callable[[list[str]], dict[str, Position]], interval: float) -> None:
        self._read = read
        self.interval = interval
        self._changed = threading.Condition()
        self._waiting: Counter[str] = Counter()
        self._latest: dict[str, tuple[int, Position]] = {}  # name -> (reading number, value)
        self._readings = 0
        self._owner_pid: int | None = None  # the process the thread runs in (forks copy us)

    def wait(
        self, name: str, reached: Callable[[Position], bool], timeout: float
    ) -> Position | None:
        """The first reading of `name` taken after this call began for which `reached`
        holds; None if none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._start_thread()
            self._waiting[name] += 1
            self._changed.notify_all()  # the thread may be asleep with nobody to watch
            seen = self._readings
            try:
                while True:
                    number, value = self._latest.get(name, (0, None))
                    if number > seen and value is not None:
                        if reached(value):
                            return value
                        seen = number
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._changed.wait(remaining)
            finally:
                self._waiting[name] -= 1
                if not self._waiting[name]:
                    del self._waiting[name]

    def _start_thread(self) -> None:
        if self._owner_pid == os.getpid():
            return
        self._owner_pid = os.getpid()
        threading.Thread(target=self._watch, name="progress-watch", daemon=True).start()

    def _watch(self) -> None:
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
                names = sorted(self._waiting)
            try:
                found = self._read(names)
            except Exception:  # a database blip: waiters time out, the next round retries
                log.warning("reading read model positions failed", exc_info=True)
                found = {}
            with self._changed:
                self._readings += 1
                for name, value in found.items():
                    self._latest[name] = (self._readings, value)
                self._changed.notify_all()
            time.sleep(self.interval)
