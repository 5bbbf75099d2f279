"""`gunicorn wsgi:app` reads READ_DATABASE_URL from its environment, as production starts
it, and its queries read the replica."""

from __future__ import annotations

from pathlib import Path

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
    env = environment(replica_settings, READ_DATABASE_URL=replication.url("replica", DATABASE))
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
