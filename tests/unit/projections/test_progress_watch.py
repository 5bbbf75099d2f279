"""The progress watch: one reader for any number of waiting queries."""

from __future__ import annotations

import threading
import time

from projections.progress import ProgressWatch

INTERVAL = 0.01


class Log:
    """A read model's position that moves when told, counting how often it is read."""

    def __init__(self) -> None:
        self.position = 0
        self.reads = 0

    def read(self, names: list[str]) -> dict[str, int]:
        self.reads += 1
        return {name: self.position for name in names}


def test_many_waiters_cost_one_reader_and_all_wake_when_their_position_is_reached() -> None:
    log = Log()
    watch = ProgressWatch(log.read, INTERVAL)
    woke: list[int | None] = []

    def waiter(wanted: int) -> None:
        woke.append(watch.wait("orders", lambda position: position >= wanted, timeout=5))

    threads = [threading.Thread(target=waiter, args=(n % 3 + 1,)) for n in range(50)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    reads_while_waiting = log.reads
    log.position = 3
    for thread in threads:
        thread.join()

    assert woke == [3] * 50
    # one read per interval for all 50 waiters, not one per waiter per interval
    assert reads_while_waiting <= 0.3 / INTERVAL + 5
    time.sleep(0.1)
    idle_reads = log.reads
    time.sleep(0.2)
    assert log.reads == idle_reads  # nobody waits: nothing is read


def test_a_wait_runs_out_at_its_timeout_and_ignores_readings_from_before_it_began() -> None:
    log = Log()
    log.position = 5
    watch = ProgressWatch(log.read, INTERVAL)
    assert watch.wait("orders", lambda position: position >= 5, timeout=1) == 5

    started = time.monotonic()
    assert watch.wait("orders", lambda position: position >= 6, timeout=0.2) is None
    assert 0.2 <= time.monotonic() - started < 1


def test_a_failing_read_lets_waiters_time_out_and_the_watch_recovers() -> None:
    log = Log()
    failing = [True]

    def read(names: list[str]) -> dict[str, int]:
        if failing[0]:
            raise ConnectionError("database restarting")
        return log.read(names)

    watch = ProgressWatch(read, INTERVAL)
    assert watch.wait("orders", lambda position: position >= 0, timeout=0.1) is None
    failing[0] = False
    assert watch.wait("orders", lambda position: position >= 0, timeout=1) == 0
