"""The entry points read READ_DATABASE_URL from their environment: `gunicorn wsgi:app`, as
production starts it, reads the replica; `shop projections status` lists it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from config import cli
from config.bootstrap import Application
from config.settings import Settings
from tests.integration.replicas.conftest import DATABASE, pause
from tests.support.api_client import call
from tests.support.processes import Processes, environment, free_port, wait_until_ready
from tests.support.replication import Replication, caught_up
from tests.support.shop import CATALOG, Shop


def test_the_api_process_reads_the_replica_its_environment_names(
    replica_settings: Settings,
    replica_application: Application,
    replication: Replication,
    tmp_path: Path,
) -> None:
    shop = Shop(replica_application.bus)
    shop.add_products(CATALOG)
    caught_up(replication)
    env = environment(replica_settings)  # READ_DATABASE_URL: the replica
    assert env["READ_DATABASE_URL"] == replication.url("replica", DATABASE)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Processes(tmp_path) as processes:
        wait_until_ready(base, processes.api(env, port, workers=1))
        pause(replication)
        shop.add_product("CAP-1", 5)  # on the primary, not replayed on the replica

        reply = call("GET", f"{base}/api/products")
        assert reply.status == 200
        assert {item["sku"] for item in reply.body["items"]} == {"MUG-1", "TEE-1", "BOOK-1"}
        assert "X-Replica-Lag-Seconds" in reply.headers
        assert call("GET", f"{base}/readyz").body["checks"]["replicas"] == "ok"


def test_shop_projections_status_lists_the_replicas(
    replica_settings: Settings, replication: Replication, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(replica_settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pause(replication)

    result = CliRunner().invoke(cli.main, ["projections", "status"])

    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if "replica 1 (127.0.0.1:" in line]
    assert "behind" in line and "replay PAUSED" in line
