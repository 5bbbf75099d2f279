"""Rate limits on the endpoints abuse aims at: registration and sign-in (customers' and
the dashboard's) per client address, password changes and order placement per customer.

Counted in Redis by flask-limiter (over the `limits` library, moving windows), so every
gunicorn worker and host shares one count. A refused request gets 429 problem+json with
Retry-After. While Redis is unreachable the limits are not enforced (requests pass and a
warning is logged): orders keep being accepted through a Redis outage, as they must.
Behind reverse proxies, TRUSTED_PROXIES tells how many X-Forwarded-For hops to believe,
so the client address is the client's, not the proxy's.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from redis import Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from config.settings import Settings
from kernel.auth import Authenticator, AuthError
from kernel.http import bearer_token, verified


def init_app(app: Flask, settings: Settings, redis: Redis, authenticator: Authenticator) -> None:
    """Limit the app's registration, sign-in, password change and order placement
    endpoints (call once every blueprint is registered)."""
    if settings.trusted_proxies:
        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    shared_pool: dict[str, Any] = {"connection_pool": redis.connection_pool}
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        storage_uri="redis://",  # the app's own pool (and its timeouts) below
        storage_options=shared_pool,
        strategy="moving-window",
        key_prefix="shop:rate-limit",
        headers_enabled=True,  # Retry-After (and X-RateLimit-*) on the answers
        swallow_errors=True,
    )

    def customer_or_address() -> str:
        """The bearer token's customer; a request without a valid one is refused with 401
        anyway, and counts against its address meanwhile."""
        token = bearer_token()
        if token is not None:
            try:
                customer = verified(authenticator, token).customer_id
            except AuthError:
                customer = None
            if customer:
                return f"customer:{customer}"
        return f"address:{get_remote_address()}"

    limited = [
        ("accounts.register_customer", settings.registration_rate_limit, get_remote_address),
        ("accounts.sign_in", settings.sign_in_rate_limit, get_remote_address),
        # A stolen access token must not buy unlimited guesses at the password.
        ("accounts.change_password", settings.sign_in_rate_limit, customer_or_address),
        ("dashboard.login", settings.sign_in_rate_limit, get_remote_address),
        ("orders.place_order", settings.order_rate_limit, customer_or_address),
        ("carts.check_out", settings.order_rate_limit, customer_or_address),
    ]
    for endpoint, rate, key in limited:  # the wrapped view counts each call
        counted: Any = limiter.limit(rate, key_func=key, methods=["POST"])
        app.view_functions[endpoint] = counted(app.view_functions[endpoint])
