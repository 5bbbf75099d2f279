"""Production entry points refuse to start without their configuration, naming what is
missing, and provision nothing; development mode fills it in with private servers,
which a process stops only if it started them and nobody else still uses them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from config.cli import cron_command, worker_command
from tests.support.api_client import call
from tests.support.polling import eventually
from tests.support.processes import BIN, ROOT, Processes, free_port, wait_until_ready

CONFIGURATION = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ADMIN_TOKEN", "SHOP_ENV")
EVERYTHING = "DATABASE_URL, REDIS_URL, SECRET_KEY, ADMIN_TOKEN are not set"
SHOP = str(BIN / "shop")


def bare_environment(var_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any of the shop's configuration."""
    env = {name: value for name, value in os.environ.items() if name not in CONFIGURATION}
    env.update(VAR_DIR=str(var_dir), LOG_LEVEL="WARNING", **extra)
    return env


def run(command: Sequence[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    done = subprocess.run(
        list(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    return done.returncode, done.stdout + done.stderr


GUNICORN = [str(BIN / "gunicorn"), "--bind", "127.0.0.1:0", "--workers", "1", "wsgi:app"]


@pytest.mark.parametrize(
    ("command", "names"),
    [
        pytest.param(GUNICORN, None, id="gunicorn wsgi:app"),
        pytest.param(worker_command(), None, id="rq worker"),
        pytest.param(cron_command(), None, id="rq cron"),
        pytest.param([SHOP, "migrate"], "DATABASE_URL is not set", id="shop migrate"),
        pytest.param([SHOP, "seed"], None, id="shop seed"),
        pytest.param([SHOP, "worker"], None, id="shop worker"),
        pytest.param([SHOP, "projections", "status"], None, id="shop projections status"),
        pytest.param([SHOP, "projections", "rebuild", "catalog"], None, id="shop rebuild"),
        pytest.param(
            [SHOP, "payments", "notify", "o-1"], "SECRET_KEY is not set", id="shop payments notify"
        ),
    ],
)
def test_an_entry_point_without_its_configuration_exits_naming_what_is_missing(
    command: list[str], names: str | None, tmp_path: Path
) -> None:
    code, output = run(command, bare_environment(tmp_path / "var"))

    assert code != 0, output
    assert (names or EVERYTHING) in output, output
    assert "SHOP_ENV=development" in output
    assert not (tmp_path / "var").exists(), "it provisioned something"


def test_only_the_missing_variables_are_named(tmp_path: Path) -> None:
    env = bare_environment(tmp_path / "var", DATABASE_URL="postgresql://nowhere/x", SECRET_KEY="s")

    code, output = run([SHOP, "projections", "status"], env)

    assert code != 0
    assert "REDIS_URL, ADMIN_TOKEN are not set" in output, output


def test_a_shop_command_beside_shop_run_leaves_its_servers_running(tmp_path: Path) -> None:
    var_dir, port = tmp_path / "var", free_port()
    env = bare_environment(var_dir, PORT=str(port))
    with Processes(tmp_path) as processes:
        shop_run = processes.start("run", [SHOP, "run", "--workers", "1"], env)
        wait_until_ready(f"http://127.0.0.1:{port}", shop_run, timeout=120)
        printed = shop_run.log.read_text()
        database_url = _printed("PostgreSQL", printed)
        redis_url = _printed("Redis", printed)

        beside = bare_environment(var_dir, SHOP_ENV="development")
        for command in (["projections", "status"], ["migrate"], ["seed"]):
            code, output = run([SHOP, *command], beside)
            assert code == 0, output

        ready = call("GET", f"http://127.0.0.1:{port}/readyz")
        assert ready.status == 200, ready.body
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM events").fetchone() is not None
        redis = Redis.from_url(redis_url)
        try:
            assert redis.ping()
            # What `rq info -u <url>` shows, as printed: the run's own worker.
            eventually(lambda: _has_workers(redis), timeout=30)
        finally:
            redis.close()

        shop_run.popen.send_signal(signal.SIGINT)
        assert shop_run.popen.wait(timeout=60) == 0
    assert not _redis_answers(redis_url), "shop run started Redis and left it running"
    assert not (var_dir / "pg" / "postmaster.pid").exists(), "shop run left PostgreSQL running"


def test_a_development_command_stops_the_servers_it_started(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = bare_environment(var_dir, SHOP_ENV="development")

    code, output = run([SHOP, "migrate"], env, timeout=120)

    assert code == 0, output
    assert (var_dir / "pg" / "PG_VERSION").exists() and (var_dir / "redis").exists()
    assert not (var_dir / "pg" / "postmaster.pid").exists(), "migrate left PostgreSQL running"
    assert not (var_dir / "redis" / "redis.pid").exists(), "migrate left Redis running"
    assert (var_dir / "secrets.json").exists()


def _printed(label: str, log: str) -> str:
    found = re.search(rf"^{label}:\s+(\S+)", log, re.MULTILINE)
    assert found, log
    return found.group(1)


def _has_workers(redis: Redis) -> None:
    assert Worker.all(connection=redis), "no RQ worker registered"


def _redis_answers(url: str) -> bool:
    redis = Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(redis.ping())
    except RedisError:
        return False
    finally:
        redis.close()
