from __future__ import annotations

import signal
import time
from pathlib import Path

from redis import Redis
from rq import Worker

from config.settings import Settings
from tests.support.processes import (
    BIN,
    environment,
    free_port,
    port_is_open,
    start,
    wait_until_ready,
)


def test_shop_run_serves_a_ready_api_with_a_worker_and_stops_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    env = environment(settings, PORT=str(port))
    process = start([str(BIN / "shop"), "run", "--workers", "1"], env, tmp_path / "run.log")
    try:
        body = wait_until_ready(f"http://127.0.0.1:{port}", process)
        assert body == {
            "status": "ready",
            "checks": {"postgres": "ok", "redis": "ok", "migrations": "ok"},
        }
        assert _worker_registered(settings)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not port_is_open(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "run.log").read_text()
    assert "Admin token: test-admin-token" in log


def _worker_registered(settings: Settings) -> bool:
    redis = Redis.from_url(settings.require()[1])
    for _ in range(50):
        if Worker.all(connection=redis):
            return True
        time.sleep(0.2)
    return False
