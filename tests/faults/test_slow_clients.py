"""Scenario 13: slow clients. A few connections that send their request headers one line
every few seconds ("slowloris") must not stall the API for everyone else.

The API runs as production runs it: `gunicorn wsgi:app` with the shipped
`gunicorn.conf.py` and no other option (tests.support.processes adds only the address
and the suite's worker count). With gunicorn's default sync worker, one slow client
holds a whole worker process until its last header line, so two of them stopped a
two-worker API; with the shipped configuration (gthread workers) a slow client holds one
thread of one worker, and the other threads keep answering. (Many more slow clients
than threads would still fill them: the reverse proxy in front, which buffers whole
requests, is what absorbs those; see README.md, "Serving in production".)
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from config.settings import Settings
from tests.support.api_client import ApiClient
from tests.support.processes import Processes, environment, free_port, wait_until_ready

SLOW_CLIENTS = 3  # fewer than one worker's threads: all of them may land on one worker
HEADER_EVERY = 2.0  # seconds between two header lines of a slow client
WATCH_FOR = 8.0  # seconds the other requests are timed while the slow clients trickle
FAST_ENOUGH = 1.0  # seconds: the bound on every other request meanwhile


class SlowClient:
    """A connection that sends `GET /healthz` one header line every `HEADER_EVERY`
    seconds until `finish()`, which ends the headers and reads the answer."""

    def __init__(self, port: int, index: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.index = index
        self.lines = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\n")
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        try:
            while not self._stop.wait(HEADER_EVERY):
                self.lines += 1
                self.sock.sendall(f"X-Slow-{self.index}-{self.lines}: still typing\r\n".encode())
        except OSError as error:
            self.error = error

    def finish(self) -> bytes:
        """End the request; the status line and headers of the answer."""
        self._stop.set()
        self._thread.join(timeout=HEADER_EVERY + 5)
        assert self.error is None, f"slow client {self.index} was cut off: {self.error}"
        self.sock.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        self.sock.close()
        return answer

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_slow_header_clients_do_not_stall_the_api_for_everyone_else(
    settings: Settings, processes: Processes, figures: dict[str, Any]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gunicorn = processes.api(environment(settings, PUBLIC_URL=url), port)
    wait_until_ready(url, gunicorn)
    api = ApiClient(url, settings.admin_token or "")
    api.add_product("MUG-1", stock=10)

    slow = [SlowClient(port, index) for index in range(SLOW_CLIENTS)]
    try:
        time.sleep(HEADER_EVERY + 0.5)  # every slow client is inside a request by now
        latencies: dict[str, list[float]] = {"/healthz": [], "/api/products": []}
        stalled: list[str] = []
        watched_until = time.monotonic() + WATCH_FOR
        while time.monotonic() < watched_until:
            for path, seen in latencies.items():
                started = time.monotonic()
                try:
                    reply = api("GET", path, timeout=10)
                    assert reply.status == 200, (path, reply.status, reply.body)
                except OSError as error:  # a timeout: the API is stalled
                    stalled.append(f"{path}: {error!r}")
                seen.append(time.monotonic() - started)
            time.sleep(0.2)
        answers = [client.finish() for client in slow]
    finally:
        for client in slow:
            client.close()

    slowest = {path: max(seen) for path, seen in latencies.items()}
    figures.update(
        slow_clients=SLOW_CLIENTS,
        header_line_every_seconds=HEADER_EVERY,
        header_lines_sent_per_slow_client=min(client.lines for client in slow),
        requests_timed=sum(len(seen) for seen in latencies.values()),
        slowest_healthz_seconds=round(slowest["/healthz"], 3),
        slowest_products_seconds=round(slowest["/api/products"], 3),
    )
    assert not stalled, f"requests timed out while slow clients were open: {stalled}"
    assert all(seconds < FAST_ENOUGH for seconds in slowest.values()), slowest
    # The slow clients held their requests open the whole time and were served in the end.
    assert all(client.lines >= WATCH_FOR / HEADER_EVERY for client in slow)
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers), answers
