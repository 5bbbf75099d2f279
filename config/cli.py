"""The `shop` operations command: migrate, seed, worker, run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import click

from config.database import migrate as migrate_database
from config.local import export_environment, prepare_local, stop_local
from config.seed import seed_catalog
from config.settings import Settings
from kernel.logging import configure_logging

WORKER_CLASS = "config.worker.ShopWorker"


def _settings() -> Settings:
    settings = export_environment(prepare_local(Settings.from_env()))
    configure_logging(settings.log_level)
    return settings


@click.group()
def main() -> None:
    """Operate the shop backend."""


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    try:
        migrate_database(_settings().require()[0])
        click.echo("schema is at the newest migration")
    finally:
        stop_local()


@main.command()
def seed() -> None:
    """Add the demo catalog (products that exist already are left alone)."""
    try:
        skus = seed_catalog(_settings())
        click.echo(f"demo catalog ready: {', '.join(skus)}")
    finally:
        stop_local()


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.argument("rq_args", nargs=-1, type=click.UNPROCESSED)
def worker(burst: bool, rq_args: tuple[str, ...]) -> None:
    """Run an RQ worker (extra options go to `rq worker`)."""
    _settings()
    try:
        sys.exit(_supervise([_worker_command(burst, rq_args)]))
    finally:
        stop_local()


@main.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
def run(workers: int) -> None:
    """Migrate, seed, then serve the API and one RQ worker until Ctrl-C."""
    settings = _settings()
    try:
        database_url, _ = settings.require()
        migrate_database(database_url)
        seed_catalog(settings)
        address = f"127.0.0.1:{settings.port}"
        click.echo(f"API:         http://{address}/   (docs at /docs)")
        click.echo(f"Admin token: {settings.admin_token}")
        click.echo("Ctrl-C stops the API and the worker; data stays in ./var")
        api = [sys.executable, "-m", "gunicorn", "--bind", address, "--workers", str(workers),
               "--access-logfile", "-", "wsgi:app"]  # fmt: skip
        sys.exit(_supervise([api, _worker_command(False, ())]))
    finally:
        stop_local()


def _worker_command(burst: bool, rq_args: Sequence[str]) -> list[str]:
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    command = [rq, "worker", "-c", "config.rq_settings", "-w", WORKER_CLASS, "--with-scheduler"]
    if burst:
        command.append("--burst")
    return [*command, *rq_args]


def _supervise(commands: list[list[str]]) -> int:
    """Run the commands side by side; when one ends or we are signalled, stop them all."""
    children = [subprocess.Popen(command) for command in commands]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [child.returncode for child in children]
    return 0 if stopping else next((code for code in codes if code), 0)
