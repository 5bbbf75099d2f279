"""Local development tooling: what `make run` and the tests use on a machine with nothing
configured. Production code never imports it (an import-linter contract keeps it so);
production entry points refuse to start without their configuration instead.

For whatever the environment does not set, `provision` supplies it: private, real
PostgreSQL and Redis servers under the var directory (see `localdev.servers`) for
DATABASE_URL / REDIS_URL, a local Stripe API (`localdev.stripe_server`: localstripe)
with its webhook pointed at the API when STRIPE_API_KEY is unset, and generated
ADMIN_TOKEN / SECRET_KEY / Stripe keys kept in var/secrets.json so they survive restarts.
Configured values always win: with STRIPE_API_KEY set (a Stripe test key, say), payments
go to STRIPE_API_BASE or Stripe itself.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from config.settings import Settings
from localdev.servers import EmbeddedServer, start_postgres, start_redis, start_stripe
from localdev.stripe_webhooks import register_webhook

WEBHOOK_PATH = "/webhooks/stripe"


@dataclass
class Provisioned:
    """Settings with nothing missing, and the private servers they point at."""

    settings: Settings
    servers: list[EmbeddedServer] = field(default_factory=list)

    def release(self) -> None:
        """Let go of the servers: each stops if this process started it and no other
        process still uses it."""
        while self.servers:
            self.servers.pop().stop()


def provision(settings: Settings, *, serves_api: bool = False) -> Provisioned:
    """Fill in every missing URL and secret locally. The local Stripe's webhook is pointed
    at `settings.api_url` only by a process that `serves_api` (`shop run`, a development
    gunicorn): any other command beside them would take it away from the running API."""
    var_dir = settings.var_dir.resolve()
    found = Provisioned(settings)
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url:
        found.servers.append(start_postgres(var_dir))
        database_url = found.servers[-1].url
    if not redis_url:
        found.servers.append(start_redis(var_dir))
        redis_url = found.servers[-1].url
    kept = _kept_secrets(settings)
    webhook_secret = settings.stripe_webhook_secret or kept["stripe_webhook_secret"]
    api_key, api_base = settings.stripe_api_key, settings.stripe_api_base
    if not api_key:  # payments go to a local Stripe, which calls the API back
        stripe = start_stripe(var_dir)
        found.servers.append(stripe)
        api_key, api_base = kept["stripe_api_key"], stripe.url
        if serves_api:
            register_webhook(stripe.url, settings.api_url + WEBHOOK_PATH, webhook_secret)
    found.settings = replace(
        settings,
        database_url=database_url,
        redis_url=redis_url,
        admin_token=settings.admin_token or kept["admin_token"],
        secret_key=settings.secret_key or kept["secret_key"],
        stripe_api_key=api_key,
        stripe_api_base=api_base,
        stripe_webhook_secret=webhook_secret,
    )
    return found


def _kept_secrets(settings: Settings) -> dict[str, str]:
    """The generated secrets of this var directory, generating whichever is missing."""
    path = settings.var_dir / "secrets.json"
    kept: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    fresh: dict[str, Callable[[], str]] = {
        "admin_token": lambda: secrets.token_urlsafe(24),
        "secret_key": lambda: secrets.token_urlsafe(32),
        "stripe_api_key": lambda: "sk_test_local_" + secrets.token_hex(12),
        "stripe_webhook_secret": lambda: "whsec_" + secrets.token_hex(24),
    }
    missing = {name: make() for name, make in fresh.items() if name not in kept}
    if missing:
        kept |= missing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(kept, indent=2))
    return kept
