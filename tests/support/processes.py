"""Start the system's real processes (the gunicorn API, `rq worker`s and `rq cron`,
`shop run`), wait until they are ready, and stop them again.

Every process is started in a session (process group) of its own, so that stopping or
killing it also reaches what it forked (gunicorn's workers, an RQ worker's scheduler),
as a crash of its machine would, and nothing is left running afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from redis import Redis
from rq import Worker

from config.cli import api_command, cron_command, payments_worker_command, worker_command
from config.settings import Settings
from tests.support.api_client import call
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"

WORKER_COMMAND = worker_command()
PAYMENTS_WORKER_COMMAND = payments_worker_command()
CRON_COMMAND = cron_command()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a process needs to run against `settings`, plus `extra`."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url or "",
        READ_DATABASE_URL=" ".join(settings.read_database_urls),
        REDIS_URL=settings.redis_url or "",
        ADMIN_TOKEN=settings.admin_token or "",
        SECRET_KEY=settings.secret_key or "",
        STRIPE_API_KEY=settings.stripe_api_key or "",
        STRIPE_API_BASE=settings.stripe_api_base or "",
        STRIPE_WEBHOOK_SECRET=settings.stripe_webhook_secret or "",
        VAR_DIR=str(settings.var_dir),
        LOG_LEVEL="WARNING",
    )
    env.update(settings.abuse_limits())
    env.update(extra)
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} ({self.log}) ---\n" + self.log.read_text()[-chars:]
        except OSError:
            return f"--- {self.name}: no log ---"


class Processes:
    """Starts processes, each logging to a file of its own under `logs`; `close()` (or
    leaving a `with` block) stops every one of them: SIGTERM to each process group, up to
    `grace` seconds to shut down cleanly, then SIGKILL to whatever of a group is left."""

    def __init__(self, logs: Path, *, grace: float = 15) -> None:
        self.logs = logs
        self.grace = grace
        self.started: list[Process] = []
        self._count: Counter[str] = Counter()
        self._cron: Process | None = None

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> Process:
        self._count[name] += 1
        log = self.logs / f"{name}-{self._count[name]}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.started.append(process)
        return process

    def api(
        self, env: Mapping[str, str], port: int, *options: str, workers: int | None = 2
    ) -> Process:
        """`gunicorn wsgi:app` on 127.0.0.1:`port` as `shop run` and production start it,
        with the shipped gunicorn.conf.py (gthread workers of 4 threads, its timeouts and
        limits); `workers` processes (None: the configuration's count) and `options`
        override it."""
        sized = ["--workers", str(workers)] if workers is not None else []
        return self.start("api", api_command(f"127.0.0.1:{port}", *sized, *options), env)

    def worker(self, env: Mapping[str, str]) -> Process:
        """An `rq worker` (with RQ's scheduler) on both of the shop's queues; with the first
        one, the `rq cron` that puts the periodic sweep on them and a payments worker that
        makes the provider calls, as a deployment runs them."""
        if self._cron is None or not self._cron.alive:
            self._cron = self.start("cron", CRON_COMMAND, env)
            self.payments_worker(env)
        return self.start("worker", WORKER_COMMAND, env)

    def payments_worker(self, env: Mapping[str, str]) -> Process:
        """An `rq worker` on the shop-payments queue only: it calls the payment provider."""
        return self.start("payments-worker", PAYMENTS_WORKER_COMMAND, env)

    @property
    def payments_workers(self) -> list[Process]:
        """Every payments worker started so far (with the first `worker`, or by hand)."""
        return [process for process in self.started if process.name == "payments-worker"]

    def kill(self, process: Process, sig: int = signal.SIGKILL) -> None:
        """Signal the process's whole group (a worker and its forked scheduler)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        if sig == signal.SIGKILL:
            process.popen.wait(timeout=10)
            _wait_group_gone(process.popen.pid, 5)

    def close(self) -> None:
        for process in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # the whole group: no orphans
                os.killpg(process.popen.pid, signal.SIGKILL)
            if process.popen.poll() is None:
                process.popen.wait(timeout=10)
            _wait_group_gone(process.popen.pid, 5)

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.started)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def wait_until_ready(base_url: str, process: Process, timeout: float = 60) -> Any:
    """The body of the first 200 from `base_url`/readyz; fails at once, with the process's
    log, if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive:
            raise AssertionError(
                f"{process.name} exited with {process.popen.returncode} before it was ready\n"
                f"{process.tail()}"
            )
        try:
            reply = call("GET", f"{base_url}/readyz", timeout=10)
            if reply.status == 200:
                return reply.body
        except OSError:  # not listening yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"{base_url} was not ready within {timeout} s\n{process.tail()}")


def wait_for_workers(redis_url: str, workers: Sequence[Process], timeout: float = 60) -> None:
    """Wait until every one of `workers` (`rq worker` processes) has registered with Redis."""
    redis = Redis.from_url(redis_url)
    try:

        def registered() -> None:
            for worker in workers:
                assert worker.alive, worker.tail()
            found = {entry.pid for entry in Worker.all(connection=redis)}
            assert {worker.popen.pid for worker in workers} <= found, "\n".join(
                worker.tail() for worker in workers
            )

        eventually(registered, timeout=timeout, interval=0.1)
    finally:
        redis.close()
