from __future__ import annotations

import signal
from pathlib import Path

from redis import Redis
from rq import Worker

from config.settings import Settings
from tests.support.polling import eventually
from tests.support.processes import (
    BIN,
    Processes,
    environment,
    free_port,
    port_is_open,
    wait_until_ready,
)


def test_shop_run_serves_a_ready_api_with_a_worker_and_stops_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    # `shop run` empties its metrics directory on start: keep it away from this process's.
    env = environment(settings, PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    with Processes(tmp_path) as processes:
        run = processes.start("run", [str(BIN / "shop"), "run", "--workers", "1"], env)
        body = wait_until_ready(f"http://127.0.0.1:{port}", run)
        assert body == {
            "status": "ready",
            "checks": {"postgres": "ok", "redis": "ok", "migrations": "ok", "subscriptions": "ok"},
        }
        _wait_for_a_worker(settings)

        run.popen.send_signal(signal.SIGINT)
        assert run.popen.wait(timeout=30) == 0
        assert not port_is_open(port)
    assert "Admin token: test-admin-token" in run.log.read_text()


def _wait_for_a_worker(settings: Settings) -> None:
    """`shop run` starts its worker itself, so any registered worker will do."""
    redis = Redis.from_url(settings.require()[1])
    try:

        def registered() -> None:
            assert Worker.all(connection=redis), "no RQ worker registered"

        eventually(registered, timeout=10, interval=0.2)
    finally:
        redis.close()
