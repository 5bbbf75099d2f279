"""HTTP load generator, run as its own process: `python -m bench.loadgen < spec.json`.

A bare asyncio HTTP/1.1 client (one connection per request, as gunicorn's sync
workers close each one), so the generator costs little CPU next to the server.

- `closed` mode: `concurrency` clients send back to back for `duration` seconds
  (throughput); latency is from send to the end of the response.
- `open` mode: requests start at a fixed `rate` whatever the server does, and
  latency is measured from each request's *scheduled* start, so a slow server
  cannot hide its queueing (no coordinated omission).

Times are CLOCK_MONOTONIC, which every process on the machine shares, so the
caller can match them with its own observations. Prints one JSON document.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

Record = tuple[float, float, int, dict[str, Any]]
"""(start: scheduled or sent, end, HTTP status or 0 for a transport error, fields)."""


@dataclass
class Spec:
    host: str
    port: int
    mode: str
    duration: float
    requests: list[bytes]
    rate: float = 0.0
    concurrency: int = 8
    warmup: float = 0.0
    fields: tuple[str, ...] = ()
    timeout: float = 30.0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Spec:
        host, port = raw["host"], int(raw["port"])
        encoded = [_encode(host, port, request) for request in raw["requests"]]
        return cls(
            host=host,
            port=port,
            mode=raw["mode"],
            duration=float(raw["duration"]),
            requests=encoded,
            rate=float(raw.get("rate", 0.0)),
            concurrency=int(raw.get("concurrency", 8)),
            warmup=float(raw.get("warmup", 0.0)),
            fields=tuple(raw.get("fields", ())),
            timeout=float(raw.get("timeout", 30.0)),
        )


def _encode(host: str, port: int, request: dict[str, Any]) -> bytes:
    body = b"" if request.get("body") is None else json.dumps(request["body"]).encode()
    lines = [
        f"{request['method']} {request['path']} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: close",
        "Accept: application/json",
    ]
    for name, value in request.get("headers", {}).items():
        lines.append(f"{name}: {value}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(spec: Spec, raw: bytes) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection(spec.host, spec.port)
    try:
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length) if length else b""
    finally:
        writer.close()
    fields: dict[str, Any] = {}
    if spec.fields and body and status < 300:
        document = json.loads(body)
        fields = {name: document.get(name) for name in spec.fields}
    return status, fields


async def _one(spec: Spec, raw: bytes, start: float, records: list[Record]) -> None:
    try:
        status, fields = await asyncio.wait_for(_exchange(spec, raw), spec.timeout)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        status, fields = 0, {}
    records.append((start, time.monotonic(), status, fields))


async def _open(spec: Spec, records: list[Record]) -> float:
    limit = asyncio.Semaphore(spec.concurrency)
    begin = time.monotonic()
    tasks = set()

    async def bounded(raw: bytes, scheduled: float) -> None:
        async with limit:
            await _one(spec, raw, scheduled, records)

    index = 0
    while True:
        scheduled = begin + index / spec.rate
        if scheduled >= begin + spec.duration:
            break
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        raw = spec.requests[index % len(spec.requests)]
        task = asyncio.create_task(bounded(raw, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    if tasks:
        # Requests still unanswered after their timeout are recorded as failures.
        await asyncio.wait(list(tasks), timeout=spec.timeout + 1)
        for task in list(tasks):
            task.cancel()
        await asyncio.sleep(0)
    return begin


async def _closed(spec: Spec, records: list[Record]) -> float:
    begin = time.monotonic()
    deadline = begin + spec.duration
    counter = iter(range(sys.maxsize))

    async def client() -> None:
        while time.monotonic() < deadline:
            raw = spec.requests[next(counter) % len(spec.requests)]
            await _one(spec, raw, time.monotonic(), records)

    await asyncio.gather(*(client() for _ in range(spec.concurrency)))
    return begin


def run(spec: Spec) -> dict[str, Any]:
    records: list[Record] = []
    cpu_before = time.process_time()
    runner = _open if spec.mode == "open" else _closed
    begin = asyncio.run(runner(spec, records))
    kept = [record for record in records if record[0] >= begin + spec.warmup]
    measured = spec.duration - spec.warmup
    return {
        "begin": begin,
        "measured_s": measured,
        "records": kept,
        "sent": len(records),
        "cpu_s": round(time.process_time() - cpu_before, 3),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pid": os.getpid(),
    }


def main() -> None:
    spec = Spec.parse(json.load(sys.stdin))
    json.dump(run(spec), sys.stdout)


if __name__ == "__main__":
    main()
