"""The settings an entry point runs with.

In production (the default) everything comes from the environment, and an entry point
that misses a variable stops at once, naming each one: it never invents a server or a
secret. In development mode, asked for with SHOP_ENV=development (`make run` and
`shop run` ask for it), whatever is missing is supplied locally: private servers under
./var and generated secrets. This is the one module of the system that reaches for the
local development tooling, and only in that mode.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Sequence

from config.settings import Settings

EVERYTHING = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "ADMIN_TOKEN",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
)
"""What a process that builds the whole application needs."""


class MissingSettings(Exception):
    """An entry point was started without variables it needs (and not in development mode)."""

    def __init__(self, entry_point: str, missing: Sequence[str]) -> None:
        names = ", ".join(missing)
        one = len(missing) == 1
        super().__init__(
            f"{entry_point} cannot start: {names} {'is' if one else 'are'} not set. Set"
            f" {'it' if one else 'them'} in the environment (see the README's Settings), or"
            " set SHOP_ENV=development to run against private servers under ./var with"
            " generated secrets."
        )
        self.missing = list(missing)


def settings_for(
    entry_point: str,
    required: Sequence[str] = EVERYTHING,
    *,
    development: bool = False,
    serves_api: bool = False,
) -> Settings:
    """The settings `entry_point` (e.g. "gunicorn wsgi:app") runs with.

    Raises MissingSettings naming each of `required` that is unset, unless in development
    mode (SHOP_ENV, or `development` for a command that is only ever that); there, local
    servers and secrets fill the gaps, and the servers this process started are let go
    of when it exits; an entry point that `serves_api` also points the local Stripe's
    webhook at itself. A malformed value raises ValueError.
    """
    settings = Settings.from_env()
    if settings.development or development:
        import localdev  # development only: production never imports it

        provisioned = localdev.provision(settings, serves_api=serves_api)
        atexit.register(provisioned.release)
        return provisioned.settings
    missing = settings.missing(required)
    if missing:
        raise MissingSettings(entry_point, missing)
    return settings


def export(settings: Settings) -> None:
    """Put the URLs and secrets into os.environ, so that child processes (gunicorn, the RQ
    workers) start with the same, complete configuration."""
    values = {
        "DATABASE_URL": settings.database_url,
        "READ_DATABASE_URL": " ".join(settings.read_database_urls),
        "REDIS_URL": settings.redis_url,
        "ADMIN_TOKEN": settings.admin_token,
        "SECRET_KEY": settings.secret_key,
        "STRIPE_API_KEY": settings.stripe_api_key,
        "STRIPE_API_BASE": settings.stripe_api_base,
        "STRIPE_WEBHOOK_SECRET": settings.stripe_webhook_secret,
    }
    os.environ.update({name: value for name, value in values.items() if value})
