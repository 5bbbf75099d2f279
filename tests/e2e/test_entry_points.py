"""Production entry points refuse to start without their configuration, naming what is
missing, and provision nothing; development mode fills it in with private servers,
which a process stops only if it started them and nobody else still uses them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from config.cli import cron_command, payments_worker_command, worker_command
from config.settings import Settings
from tests.support.api_client import ApiClient, call
from tests.support.payments import AUTHENTICATION_REQUIRED, SUCCEEDS, authenticate, stripe_client
from tests.support.polling import eventually
from tests.support.processes import (
    BIN,
    ROOT,
    Processes,
    free_port,
    port_is_open,
    wait_until_ready,
)

CONFIGURATION = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ADMIN_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_API_BASE",
    "STRIPE_WEBHOOK_SECRET",
    "SHOP_ENV",
)
EVERYTHING = (
    "DATABASE_URL, REDIS_URL, SECRET_KEY, ADMIN_TOKEN, STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET"
    " are not set"
)
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
        pytest.param(payments_worker_command(), None, id="rq worker shop-payments"),
        pytest.param(cron_command(), None, id="rq cron"),
        pytest.param([SHOP, "migrate"], "DATABASE_URL is not set", id="shop migrate"),
        pytest.param([SHOP, "seed"], None, id="shop seed"),
        pytest.param([SHOP, "worker"], None, id="shop worker"),
        pytest.param([SHOP, "projections", "status"], None, id="shop projections status"),
        pytest.param([SHOP, "projections", "rebuild", "catalog"], None, id="shop rebuild"),
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
    env = bare_environment(
        tmp_path / "var",
        DATABASE_URL="postgresql://nowhere/x",
        SECRET_KEY="s",
        STRIPE_API_KEY="sk_test_x",
    )

    code, output = run([SHOP, "projections", "status"], env)

    assert code != 0
    assert "REDIS_URL, ADMIN_TOKEN, STRIPE_WEBHOOK_SECRET are not set" in output, output


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(GUNICORN, id="gunicorn wsgi:app"),
        pytest.param(payments_worker_command(), id="rq worker shop-payments"),
        pytest.param([SHOP, "worker"], id="shop worker"),
    ],
)
def test_without_stripe_settings_an_entry_point_refuses_to_start_naming_them(
    command: list[str], tmp_path: Path
) -> None:
    """A production process never falls back to a local (or no) payment provider."""
    env = bare_environment(
        tmp_path / "var",
        DATABASE_URL="postgresql://nowhere/x",
        REDIS_URL="redis://nowhere:1/0",
        SECRET_KEY="s",
        ADMIN_TOKEN="a",
    )

    code, output = run(command, env)

    assert code != 0, output
    assert "STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET are not set" in output, output
    assert not (tmp_path / "var").exists(), "it provisioned something"


def test_a_shop_command_beside_shop_run_leaves_its_servers_running(tmp_path: Path) -> None:
    var_dir, port = tmp_path / "var", free_port()
    env = bare_environment(var_dir, PORT=str(port))
    with Processes(tmp_path) as processes:
        shop_run = processes.start("run", [SHOP, "run", "--workers", "1"], env)
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url, shop_run, timeout=120)
        printed = shop_run.log.read_text()
        database_url = _printed("PostgreSQL", printed)
        redis_url = _printed("Redis", printed)
        stripe_url = _printed("Stripe API", printed)
        assert stripe_url.startswith("http://127.0.0.1:"), printed
        # Payments go to the local Stripe `shop run` started, which calls the API back.
        api = ApiClient(base_url, _printed("Admin token", printed))
        _paid_through_the_local_stripe(api, database_url, var_dir, stripe_url)

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
    stripe_port = int(stripe_url.rsplit(":", 1)[1])
    assert not port_is_open(stripe_port), "shop run left its local Stripe running"


def _paid_through_the_local_stripe(
    api: ApiClient, database_url: str, var_dir: Path, stripe_url: str
) -> None:
    """An order paid with a card that succeeds is confirmed; one whose card asks for 3-D
    Secure waits until the customer authenticates at Stripe, whose webhook then confirms
    it. Both charges are PaymentIntents at the local Stripe."""
    secrets = json.loads((var_dir / "secrets.json").read_text())  # the run's generated keys
    local = Settings(
        stripe_api_key=secrets["stripe_api_key"],
        stripe_api_base=stripe_url,
        stripe_webhook_secret=secrets["stripe_webhook_secret"],
    )
    stripe = stripe_client(local)
    customer = api.register("ada@example.com", "Ada").headers
    paid = api.place(customer, {"MUG-001": 2}, SUCCEEDS)
    assert paid.status == 202, paid.body
    order = _order_when(api, customer, paid.body["order_id"], "confirmed")
    intent = stripe.v1.payment_intents.retrieve(order["payment"]["reference"])
    assert (intent.status, intent.amount) == ("succeeded", order["total"]["amount"])
    assert intent.metadata["order_id"] == paid.body["order_id"]

    secure = api.place(customer, {"MUG-001": 1}, AUTHENTICATION_REQUIRED)
    assert secure.status == 202, secure.body
    waiting = _payment_when(api, customer, secure.body["order_id"], "pending")
    assert waiting["status"] == "pending"  # the order waits on the customer
    assert authenticate(local, waiting["payment"]["reference"])["status"] == "succeeded"
    # Confirmed by the webhook, long before reconciliation would have looked it up.
    _order_when(api, customer, secure.body["order_id"], "confirmed", timeout=20)
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "SELECT data ->> 'provider_event_id' FROM events WHERE type = 'PaymentSucceeded'"
            " AND data ->> 'order_id' = %s",
            (secure.body["order_id"],),
        ).fetchone()
    assert found is not None and str(found[0]).startswith("evt_"), found


def _order_when(
    api: ApiClient, customer: dict[str, str], order_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    def reached() -> dict[str, Any]:
        reply = api("GET", f"/api/orders/{order_id}", None, customer)
        assert reply.status == 200 and reply.body["order"]["status"] == status, reply.body
        order: dict[str, Any] = reply.body["order"]
        return order

    found: dict[str, Any] = eventually(reached, timeout=timeout, interval=0.2)
    return found


def _payment_when(
    api: ApiClient, customer: dict[str, str], order_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    def reached() -> dict[str, Any]:
        reply = api("GET", f"/api/orders/{order_id}", None, customer)
        assert reply.status == 200, reply.body
        order: dict[str, Any] = reply.body["order"]
        assert order["payment"]["status"] == status, order
        return order

    found: dict[str, Any] = eventually(reached, timeout=timeout, interval=0.2)
    return found


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
