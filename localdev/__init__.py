"""Local development tooling: what `make run` and the tests use on a machine with nothing
configured. Production code never imports it (an import-linter contract keeps it so);
production entry points refuse to start without their configuration instead.

For whatever the environment does not set, `provision` supplies it: private, real
PostgreSQL and Redis servers under the var directory (see `localdev.servers`) for
DATABASE_URL / REDIS_URL, and generated ADMIN_TOKEN / SECRET_KEY kept in
var/secrets.json so they survive restarts. Configured values always win.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace

from config.settings import Settings
from localdev.servers import EmbeddedServer, start_postgres, start_redis


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


def provision(settings: Settings) -> Provisioned:
    """Fill in every missing URL and secret locally."""
    var_dir = settings.var_dir.resolve()
    found = Provisioned(settings)
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url:
        found.servers.append(start_postgres(var_dir))
        database_url = found.servers[-1].url
    if not redis_url:
        found.servers.append(start_redis(var_dir))
        redis_url = found.servers[-1].url
    admin_token, secret_key = settings.admin_token, settings.secret_key
    if not admin_token or not secret_key:
        kept = _kept_secrets(settings)
        admin_token = admin_token or kept["admin_token"]
        secret_key = secret_key or kept["secret_key"]
    found.settings = replace(
        settings,
        database_url=database_url,
        redis_url=redis_url,
        admin_token=admin_token,
        secret_key=secret_key,
    )
    return found


def _kept_secrets(settings: Settings) -> dict[str, str]:
    path = settings.var_dir / "secrets.json"
    if path.exists():
        kept: dict[str, str] = json.loads(path.read_text())
        return kept
    fresh = {"admin_token": secrets.token_urlsafe(24), "secret_key": secrets.token_urlsafe(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(fresh, indent=2))
    return fresh
