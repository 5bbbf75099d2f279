"""A delaying reverse proxy in front of the local payment provider (localstripe):
`python -m bench.slow_provider --port P --upstream URL [--delay-ms N]`.

Every request is held for the current delay, then forwarded to `upstream` as it came
(method, path, query, headers such as Authorization, Idempotency-Key and the Stripe-*
ones, body), and the provider's answer goes back as it came (status, headers, body). Only
hop-by-hop headers are left to each side's own connection. The payments workers talk to
it instead of the provider (STRIPE_API_BASE), so every provider call they make takes the
delay longer, as a slow provider would; nothing else changes.

The bench drives it through paths of its own, which are never forwarded:

- `PUT /_slow_provider/delay` with `{"ms": N}`: the delay from now on;
- `GET /_slow_provider/stats`: the delay, requests forwarded (by method and path kind,
  and by status), the provider's own time per request (p50/p90/p99/max, ms), and the
  most requests in flight at once (the provider calls being waited on concurrently);
- `POST /_slow_provider/reset`: zero those figures.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

CONTROL = "/_slow_provider"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",  # each side frames its own body
    }
)
_ID = re.compile(r"/[a-z]{1,5}_[A-Za-z0-9]{8,}")  # an object id: pi_..., pm_...


class Proxy:
    def __init__(self, upstream: str, delay_ms: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_ms = delay_ms
        self.session: aiohttp.ClientSession | None = None
        self.reset()

    def reset(self) -> None:
        self.upstream_s: list[float] = []
        self.by_kind: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.in_flight = 0
        self.in_flight_max = 0
        self.errors = 0

    async def start(self, _app: web.Application) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=300),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(CONTROL):
            return await self.control(request)
        assert self.session is not None
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            if self.delay_ms > 0:
                await asyncio.sleep(self.delay_ms / 1000)
            body = await request.read()
            headers = CIMultiDict(
                (name, value)
                for name, value in request.headers.items()
                if name.lower() not in HOP_BY_HOP
            )
            target = URL(self.upstream + request.rel_url.raw_path_qs, encoded=True)
            began = time.monotonic()
            try:
                async with self.session.request(
                    request.method,
                    target,
                    headers=headers,
                    data=body if body else None,
                    allow_redirects=False,
                ) as answer:
                    content = await answer.read()
                    status, reason = answer.status, answer.reason
                    back = CIMultiDict(
                        (name, value)
                        for name, value in answer.headers.items()
                        if name.lower() not in HOP_BY_HOP
                    )
            except (aiohttp.ClientError, TimeoutError) as error:
                self.errors += 1
                return web.Response(status=502, text=f"slow_provider: upstream failed: {error}")
            self.upstream_s.append(time.monotonic() - began)
            kind = f"{request.method} {_ID.sub('/{id}', request.path)}"
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            return web.Response(status=status, reason=reason, headers=back, body=content)
        finally:
            self.in_flight -= 1

    async def control(self, request: web.Request) -> web.Response:
        what = request.path[len(CONTROL) :]
        if what == "/delay" and request.method == "PUT":
            self.delay_ms = float((await request.json())["ms"])
            return web.json_response({"ms": self.delay_ms})
        if what == "/stats" and request.method == "GET":
            return web.json_response(self.stats())
        if what == "/reset" and request.method == "POST":
            self.reset()
            return web.json_response({"reset": True})
        return web.json_response({"error": "unknown control path"}, status=404)

    def stats(self) -> dict[str, Any]:
        times = sorted(self.upstream_s)

        def at(share: float) -> float | None:
            if not times:
                return None
            return round(times[min(len(times) - 1, int(share * len(times)))] * 1000, 2)

        return {
            "delay_ms": self.delay_ms,
            "requests": len(times),
            "by_kind": self.by_kind,
            "by_status": self.by_status,
            "upstream_errors": self.errors,
            "upstream_ms": {
                "p50": at(0.50),
                "p90": at(0.90),
                "p99": at(0.99),
                "max": round(times[-1] * 1000, 2) if times else None,
            },
            "in_flight_max": self.in_flight_max,
        }


def app(upstream: str, delay_ms: float) -> web.Application:
    proxy = Proxy(upstream, delay_ms)
    application = web.Application(client_max_size=16 * 1024 * 1024)
    application.on_startup.append(proxy.start)
    application.on_cleanup.append(proxy.stop)
    application.router.add_route("*", "/{tail:.*}", proxy.forward)
    return application


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.slow_provider", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the provider's base URL")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    web.run_app(
        app(args.upstream, args.delay_ms),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
