"""The bench's own databases, Redis database and processes (API, workers).

Databases are created as `bench_<random>[_suffix]` on the server DATABASE_URL
names and dropped at the end; the Redis database is claimed with the same
claim keys the test suite uses (`shop-test:claim:<db>` in db 0), so a
concurrent test run never shares it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from redis import Redis
from sqlalchemy.engine import make_url

from config.cli import cron_command, payments_worker_command, worker_command
from config.database import migrate
from config.settings import Settings
from localdev.servers import EmbeddedServer, start_stripe

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_TOKEN = "bench-admin-token"
SECRET_KEY = "bench-secret-key"
WORKER_COMMAND = worker_command()
PAYMENTS_WORKER_COMMAND = payments_worker_command()
CRON_COMMAND = cron_command()
STRIPE_API_KEY = "sk_test_bench"  # any sk_test_ key: the local Stripe accepts them all
STRIPE_WEBHOOK_SECRET = "whsec_bench"
NO_STRIPE = "http://127.0.0.1:9"
"""The Stripe API base of settings that must never reach a provider (nothing listens on
the discard port): never Stripe itself."""
WEBHOOK_PATH = "/webhooks/stripe"


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MiB (nan if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclass
class Servers:
    """The PostgreSQL and Redis servers the bench runs against."""

    database_url: str
    redis_url: str
    created: list[str] = field(default_factory=list)
    redis_db: int | None = None
    stripe: EmbeddedServer | None = None
    _claims: Redis | None = None

    @classmethod
    def from_env(cls) -> Servers:
        return cls(
            os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
        )

    def admin_conninfo(self) -> str:
        return libpq(make_url(self.database_url).render_as_string(hide_password=False))

    def create_database(self, name: str, *, migrated: bool = True) -> str:
        """Create database `name` (a fresh `bench_...` one); returns its URL."""
        if not name.startswith("bench_"):
            raise ValueError("the bench only creates bench_* databases")
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = make_url(self.database_url).set(database=name).render_as_string(hide_password=False)
        if migrated:
            migrate(url)
        return url

    def drop_databases(self) -> None:
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            while self.created:
                name = self.created.pop()
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def claim_redis(self) -> str:
        """Claim a Redis database number nobody else (tests, other benches) uses."""
        self._claims = Redis.from_url(self.redis_url, db=0)
        for db in range(15, 0, -1):
            if self._claims.set(f"shop-test:claim:{db}", f"bench:{os.getpid()}", nx=True, ex=7200):
                self.redis_db = db
                break
        else:
            raise RuntimeError("every Redis database 1-15 is claimed by a test run or a bench")
        url = redis_with_db(self.redis_url, self.redis_db)
        Redis.from_url(url).flushdb()
        return url

    def release_redis(self) -> None:
        if self._claims is None or self.redis_db is None:
            return
        Redis.from_url(redis_with_db(self.redis_url, self.redis_db)).flushdb()
        self._claims.delete(f"shop-test:claim:{self.redis_db}")
        self._claims.close()
        self.redis_db = None

    def start_stripe(self, var_dir: Path) -> str:
        """A local Stripe API (localdev.stripe_server, localstripe) for the phases' payments
        workers, its state under `var_dir`; its URL."""
        if self.stripe is None:
            self.stripe = start_stripe(var_dir)
        return self.stripe.url

    @property
    def stripe_url(self) -> str | None:
        return self.stripe.url if self.stripe is not None else None

    def stop_stripe(self) -> None:
        if self.stripe is not None:
            self.stripe.stop()
            self.stripe = None

    def versions(self) -> tuple[str, str]:
        with psycopg.connect(self.admin_conninfo(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        info = Redis.from_url(self.redis_url).info("server")
        return (str(row[0]) if row else "?"), str(info.get("redis_version", "?"))


def redis_with_db(url: str, db: int) -> str:
    base = url.split("?", 1)[0]
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{db}"


def bench_settings(
    database_url: str, redis_url: str, var_dir: Path, stripe_url: str | None = None
) -> Settings:
    """The settings of the processes under test; payments go to the local Stripe at
    `stripe_url` (none: to an address where nothing answers)."""
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        stripe_api_key=STRIPE_API_KEY,
        stripe_api_base=stripe_url or NO_STRIPE,
        stripe_webhook_secret=STRIPE_WEBHOOK_SECRET,
        var_dir=var_dir,
        access_token_ttl=24 * 3600,  # a run outlasts 15 minutes; its customers sign in once
    )
    return settings.without_abuse_limits()  # a few customers place hundreds a second


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    # The processes under test run with tracing off, as deployed by default, whatever
    # this shell says: the tracing phase measures it on (bench/tracing.py).
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env.update(
        DATABASE_URL=settings.database_url or "",
        REDIS_URL=settings.redis_url or "",
        ADMIN_TOKEN=settings.admin_token or "",
        SECRET_KEY=settings.secret_key or "",
        STRIPE_API_KEY=settings.stripe_api_key or "",
        STRIPE_API_BASE=settings.stripe_api_base or NO_STRIPE,
        STRIPE_WEBHOOK_SECRET=settings.stripe_webhook_secret or "",
        VAR_DIR=str(settings.var_dir),
        ACCESS_TOKEN_TTL=str(settings.access_token_ttl),
        PYTHONPATH=str(ROOT),
    )
    env.update(settings.abuse_limits())
    env.update(extra)
    return env


class Processes:
    """Child processes (API servers, workers) the bench starts; all stopped at exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []
        self.workers: list[tuple[str, subprocess.Popen[bytes]]] = []  # every one ever started

    def start(
        self, name: str, command: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            child = subprocess.Popen(
                list(command),
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children.append(child)
        return child

    def gunicorn(
        self, name: str, app: str, env: Mapping[str, str], workers: int = 2
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """Start gunicorn (sync workers, like `shop run`); its base URL once ready, and
        the master process."""
        port = free_port()
        command = [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--backlog",
            "2048",
            app,
        ]
        child = self.start(name, command, env)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + ("/readyz" if app == "wsgi:app" else "/ping"), child)
        return base, child

    def worker(self, name: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        child = self.start(name, WORKER_COMMAND, env)
        self.workers.append((name, child))
        return child

    def payments_worker(self, name: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """An `rq worker` of the shop-payments queue only: it makes the provider calls."""
        child = self.start(name, PAYMENTS_WORKER_COMMAND, env)
        self.workers.append((name, child))
        return child

    def cron(self, name: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        return self.start(name, CRON_COMMAND, env)

    def stop(self, child: subprocess.Popen[bytes], timeout: float = 15) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(self.children):
            self.stop(child)


def wait_http(url: str, child: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {child.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout} s")


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="shop-bench-") as path:
        yield Path(path)


def new_name() -> str:
    return f"bench_{uuid.uuid4().hex[:10]}"
