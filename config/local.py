"""Local defaults for a machine with nothing configured.

When DATABASE_URL / REDIS_URL are unset, private real servers run under the var
directory; when ADMIN_TOKEN / SECRET_KEY are unset, generated ones are kept in
var/secrets.json so they survive restarts. Configured values always win.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import replace

from config.embedded import EmbeddedServer, start_postgres, start_redis
from config.settings import Settings

_started: list[EmbeddedServer] = []


def prepare_local(settings: Settings) -> Settings:
    """Settings with every missing URL and secret filled in locally."""
    var_dir = settings.var_dir.resolve()
    database_url, redis_url = settings.database_url, settings.redis_url
    if not database_url:
        _started.append(start_postgres(var_dir))
        database_url = _started[-1].url
    if not redis_url:
        _started.append(start_redis(var_dir))
        redis_url = _started[-1].url
    admin_token, secret_key = settings.admin_token, settings.secret_key
    if not admin_token or not secret_key:
        kept = _kept_secrets(settings)
        admin_token = admin_token or kept["admin_token"]
        secret_key = secret_key or kept["secret_key"]
    return replace(
        settings,
        database_url=database_url,
        redis_url=redis_url,
        admin_token=admin_token,
        secret_key=secret_key,
    )


def stop_local() -> None:
    """Stop the private servers this process started (a no-op when there are none)."""
    while _started:
        _started.pop().stop()


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


def export_environment(settings: Settings) -> Settings:
    """Put resolved URLs and secrets into os.environ so child processes share them."""
    values = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "ADMIN_TOKEN": settings.admin_token,
        "SECRET_KEY": settings.secret_key,
    }
    os.environ.update({name: value for name, value in values.items() if value})
    return settings
