"""The `shop` operations command: migrate, seed, worker, run, projections, parked, admins.

Every command but `run` needs its configuration in the environment, or SHOP_ENV=development
(see config.environment); `run` is the development command and always may fill it in.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from config.bootstrap import Application, bootstrap
from config.database import migrate as migrate_database
from config.environment import EVERYTHING, MissingSettings, export, settings_for
from config.queues import PAYMENTS
from config.seed import seed_catalog, seed_pricing
from config.settings import Settings
from kernel import parking
from kernel.admins import AdminError
from kernel.auth import ROLES
from kernel.errors import ParkedKeyBusy, StillFailing
from kernel.event_store import START
from kernel.horizon import HELD_BACK_AFTER, RunningWriter
from kernel.logging import configure_logging
from kernel.subscriptions import PartitionStatus, Subscriber, SubscriptionStatus
from projections.generations import OlderCode
from projections.read_side import ProjectionStatus
from projections.replicas import Replicas

RQ_OPTIONS = (
    "-c", "config.worker",
    "--connection-class", "config.worker.PatientRedis",
)  # fmt: skip
"""What every shop RQ process is started with: its settings (and entry point), and a Redis
client that waits out an outage (see config.worker)."""

GUNICORN_CONFIG = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"
PAYMENT_WORKERS = 2  # `shop run`'s: enough for a local provider that answers in ms
"""The API's gunicorn configuration, shipped at the project's root (where a plain
`gunicorn wsgi:app` started there reads it too): `shop run` and the test suites use it."""


def _settings(
    command: str,
    required: Sequence[str] = EVERYTHING,
    *,
    development: bool = False,
    serves_api: bool = False,
) -> Settings:
    try:
        settings = settings_for(
            f"shop {command}", required, development=development, serves_api=serves_api
        )
    except MissingSettings as missing:
        raise click.ClickException(str(missing)) from None
    configure_logging(settings.log_level)
    return settings


@contextmanager
def _application(command: str) -> Iterator[Application]:
    application = bootstrap(_settings(command))
    try:
        yield application
    finally:
        application.close()


@click.group()
def main() -> None:
    """Operate the shop backend."""


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    migrate_database(_settings("migrate", ["DATABASE_URL"]).require()[0])
    click.echo("schema is at the newest migration")


@main.command()
def seed() -> None:
    """Add the demo catalog (products that exist already are left alone)."""
    with _application("seed") as application:
        skus = seed_catalog(application.bus)
        rules = seed_pricing(application.bus)
    click.echo(f"demo catalog ready: {', '.join(skus)}")
    click.echo(f"demo pricing ready: {', '.join(rules)}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
@click.argument("rq_args", nargs=-1, type=click.UNPROCESSED)
def worker(burst: bool, rq_args: tuple[str, ...]) -> None:
    """Run an RQ worker (extra options go to `rq worker`)."""
    export(_settings("worker"))
    sys.exit(_supervise([worker_command(*(["--burst"] if burst else []), *rq_args)]))


@main.command()
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="gunicorn worker processes  [default: gunicorn.conf.py's: WEB_CONCURRENCY, else"
    " one per core, at least 2]",
)
def run(workers: int | None) -> None:
    """Migrate, seed, then serve the API with an RQ worker, two payments workers and RQ's
    cron until Ctrl-C (payments go to a local Stripe unless STRIPE_API_KEY is set)."""
    settings = _settings("run", development=True, serves_api=True)
    export(settings)  # the API and the workers start with the same configuration
    address = f"127.0.0.1:{settings.port}"
    # gunicorn.conf.py: gthread workers, timeouts, limits, no access log (the app logs).
    api = api_command(address, *(["--workers", str(workers)] if workers else []))
    database_url, redis_url = settings.require()
    migrate_database(database_url)
    application = bootstrap(settings)
    try:
        seed_catalog(application.bus)
        seed_pricing(application.bus)
    finally:
        application.close()
    # Counters of processes from an earlier run would add up with this run's.
    shutil.rmtree(settings.prometheus_dir, ignore_errors=True)
    click.echo(f"API:         http://{address}/   (docs at /docs, dashboard at /admin)")
    click.echo(f"Admin token: {settings.admin_token}")
    click.echo(f"PostgreSQL:  {database_url}")
    click.echo(f"Redis:       {redis_url}   (rq info -u '{redis_url}')")
    click.echo(f"Stripe API:  {settings.stripe_api_base or 'https://api.stripe.com'}")
    click.echo("Ctrl-C stops the API and the workers; data stays in ./var")
    quiet = ("--logging_level", "WARNING")
    payment_workers = [payments_worker_command(*quiet) for _ in range(PAYMENT_WORKERS)]
    cron = cron_command("--logging-level", "WARNING")
    sys.exit(_supervise([api, worker_command(*quiet), *payment_workers, cron]))


def api_command(bind: str, *gunicorn_args: str) -> list[str]:
    """The `gunicorn wsgi:app` command line of the API, with the shipped configuration
    (GUNICORN_CONFIG), listening on `bind`; `gunicorn_args` override the configuration."""
    if not GUNICORN_CONFIG.is_file():
        raise click.ClickException(f"{GUNICORN_CONFIG} is missing: run the shop from its checkout")
    return [
        sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG),
        "--bind", bind, *gunicorn_args, "wsgi:app",
    ]  # fmt: skip


def worker_command(*rq_args: str) -> list[str]:
    """The plain `rq worker` command line of a shop worker, with `rq_args` appended."""
    return [
        _rq(),
        "worker",
        *RQ_OPTIONS,
        "-w",
        "rq.SimpleWorker",
        "--with-scheduler",
        "--maintenance-interval",
        "10",
        "--dequeue-strategy",
        "round_robin",
        *rq_args,
    ]


def payments_worker_command(*rq_args: str) -> list[str]:
    """The `rq worker` command line of a worker that makes the payment provider calls
    (the shop-payments queue only): each one waits on one call at a time, so a
    deployment runs about (payments per second x provider latency) of them, and more."""
    return worker_command(*rq_args, PAYMENTS)


def cron_command(*rq_args: str) -> list[str]:
    """The plain `rq cron` command line that puts the periodic sweep on the queues."""
    return [_rq(), "cron", *RQ_OPTIONS, *rq_args, "config.cron"]


def _rq() -> str:
    return os.path.join(os.path.dirname(sys.executable), "rq")


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


@main.group()
def projections() -> None:
    """Inspect and rebuild the read models."""


@projections.command("status")
def projections_status() -> None:
    """Each read model's and the saga's checkpoint, the log head, lag and state, then each
    partition's with its lease holder; and the writers holding every subscription back."""
    with _application("projections status") as application:
        rows = [
            ("subscription", "gen", "version", "mode", "checkpoint", "head", "lag", "lag s",
             "state")
        ]  # fmt: skip
        stranded_after, now = application.runner.lease_seconds, datetime.now(UTC)
        for name, generation, version, mode, sub, note in _subscriptions(application):
            rows.append(
                (name, generation, version, mode, sub.checkpoint.token(), sub.head.token(),
                 str(sub.lag_events), f"{sub.lag_seconds:.1f}", _state(sub) + note)
            )  # fmt: skip
            stranded = {p.partition for p in sub.stranded(stranded_after)}
            rows += [_partition_row(p, p.partition in stranded, now) for p in sub.partitions]
        _echo_table(rows)
        _echo_held_back(application.read_side.writers_holding_back(HELD_BACK_AFTER))
        _echo_replicas(application.read_side.replicas)


def _subscriptions(
    application: Application,
) -> list[tuple[str, str, str, str, SubscriptionStatus, str]]:
    """(name, generation, version, mode, status, note) of each read model, then of the saga."""
    found = []
    for status in application.read_side.status():
        found.append(
            (status.name, str(status.generation), _version(status), status.mode,
             status.subscription, _rebuild_note(status))
        )  # fmt: skip
    (saga,) = application.runner.status([application.saga])
    found.append((application.saga.name, "-", "-", "saga", saga, ""))
    return found


def _version(status: ProjectionStatus) -> str:
    """The active generation's version, and this code's when it differs."""
    built = status.generations.built
    version = "-" if built is None else str(built.version)
    if built is None or built.version != status.code_version:
        version += f" (code {status.code_version})"
    if built is not None and built.reason:
        version += f", {built.reason}"
    return version


def _rebuild_note(status: ProjectionStatus) -> str:
    """Which generation a rebuild under way fills, with which version, why and for whom."""
    current = status.generations
    if status.rebuild is None or current.rebuild is None:
        return ""
    build = current.rebuild
    who = f" by {build.requested_by}" if build.requested_by else ""
    return (
        f" (rebuilding gen {current.building} with version {build.version}, {build.reason}"
        f"{who}: {status.rebuild.lag_events} to go)"
    )


def _echo_replicas(replicas: Replicas | None) -> None:
    """The streaming replicas queries read from (READ_DATABASE_URL), if any."""
    if replicas is None:
        return
    click.echo("\nreplicas queries read from:")
    for replica, lag, error in replicas.statuses():
        if lag is None:
            click.echo(f"  {replica.name}  UNREACHABLE  {error}")
            continue
        paused = "  replay PAUSED" if lag.paused else ""
        click.echo(f"  {replica.name}  {lag.seconds:.1f} s behind  {lag.bytes} bytes{paused}")


def _echo_held_back(writers: Sequence[RunningWriter]) -> None:
    if not writers:
        return
    click.echo(
        f"\nheld back by {len(writers)} event-store writer(s) running for more than"
        f" {HELD_BACK_AFTER:.0f} s (no subscription applies events past them):"
    )
    for writer in writers:
        click.echo(
            f"  pid {writer.pid}  xid {writer.transaction_id}  {writer.age_seconds:.1f} s"
            f"  {writer.state}  {writer.application or '-'}  {writer.client or '-'}"
            f"  {' '.join((writer.query or '?').split())}"
        )


def _state(status: SubscriptionStatus | PartitionStatus) -> str:
    if status.last_error:
        return f"failed at {status.failed_position}: {status.last_error}"
    if isinstance(status, SubscriptionStatus) and status.parked_keys:
        return f"{status.state}, {status.parked_keys} key(s) parked"
    return status.state


def _partition_row(
    part: PartitionStatus, stranded: bool, now: datetime
) -> tuple[str, str, str, str, str, str, str, str, str]:
    """A partition's line under its subscription's: the state column also says who holds
    its lease until when, or how long it has had no holder."""
    if part.holder is not None and part.lease_expires_at is not None:
        left = max((part.lease_expires_at - now).total_seconds(), 0.0)
        holding = f"held by {part.holder}, lease ends in {left:.1f} s"
    else:
        unheld = part.unheld_seconds
        since = f" for {unheld:.1f} s" if unheld else ""  # 0: never held, since unknown
        holding = ("STRANDED: " if stranded else "") + f"no holder{since}"
    return (
        f"  partition {part.partition}", "", "", "", part.checkpoint.token(), "",
        str(part.lag_events), f"{part.lag_seconds:.1f}", f"{_state(part)}; {holding}",
    )  # fmt: skip


def _echo_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@projections.command("rebuild")
@click.argument("name")
@click.option(
    "--older",
    is_flag=True,
    help="Rebuild with this code's version even if the active generation was built with a"
    " newer one (after rolling a release back, with no worker of it left running).",
)
def projections_rebuild(name: str, older: bool) -> None:
    """Replay the log into a new generation of NAME here, then switch to it."""
    with _application("projections rebuild") as application:
        side = application.read_side
        if name not in side.projections:
            raise click.BadParameter(
                f"choose one of {', '.join(side.projections)}", param_hint="NAME"
            )
        try:
            generation = side.start_rebuild(name, f"shop CLI ({_who()})", allow_older=older)
        except OlderCode as refused:
            raise click.ClickException(
                f"{refused}: a rebuild here would go back to it (--older to do so anyway)"
            ) from None
        with application.engine.connect() as conn, conn.begin():
            total = application.store.backlog(conn, START)[0]
        started = time.monotonic()
        done = 0
        with click.progressbar(
            length=total,
            label=f"{name} -> generation {generation}",
            show_eta=True,
            item_show_func=_rate(started, lambda: done),
        ) as bar:
            while True:
                progress = side.continue_rebuild(name, max_seconds=1)
                # Workers may drain the same generation meanwhile: count by what is left.
                reached = total if progress.switched else max(done, total - progress.lag_events)
                bar.update(reached - done)
                done = reached
                if progress.error:
                    raise click.ClickException(f"stopped: {progress.error}")
                if progress.needs_version is not None:
                    raise click.ClickException(
                        f"generation {generation} is being built with version"
                        f" {progress.needs_version} of {name}, newer than this code's: the"
                        " workers running that version carry it on"
                    )
                if progress.switched:
                    break
        seconds = time.monotonic() - started
        click.echo(
            f"switched to generation {generation}: {done} events in {seconds:.1f} s"
            f" ({done / seconds if seconds else 0:.0f} events/s)"
        )


def _who() -> str:
    """The operator running this command, as `user@host`."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name nor passwd entry (a bare container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@main.group()
def parked() -> None:
    """List, retry or skip the keys (orders) a subscription parked."""


@parked.command("list")
@click.option("--subscription", help="Only this subscription's (e.g. order_detail@1).")
def parked_list(subscription: str | None) -> None:
    """Each parked key: the event and error it stopped at, and how many events wait."""
    with _application("parked list") as application:
        with application.engine.connect() as conn:
            found = parking.listing(conn, subscription=subscription, limit=10_000)
        if not found:
            click.echo("nothing is parked")
            return
        rows = [("subscription", "key", "failed at", "event", "events", "parked at", "error")]
        rows += [
            (p.subscription, p.key, str(p.failed_at.position), p.event_type, str(p.events),
             f"{p.parked_at:%Y-%m-%d %H:%M:%S}", p.error.splitlines()[0][:120])
            for p in found
        ]  # fmt: skip
        _echo_table(rows)


@parked.command("retry")
@click.argument("subscription")
@click.argument("key")
@click.option("--reason", default="", help="Why (e.g. the fix deployed).")
def parked_retry(subscription: str, key: str, reason: str) -> None:
    """Apply KEY's parked events for SUBSCRIPTION in order, after a fix."""
    with _application("parked retry") as application:
        applied = _on_parked(
            lambda found: application.runner.retry(found, key, _operator(), reason),
            application, subscription,
        )  # fmt: skip
        click.echo(f"applied {applied} event(s) of {key}; its events flow again")


@parked.command("skip")
@click.argument("subscription")
@click.argument("key")
@click.option("--reason", required=True, help="Why they may go unapplied.")
def parked_skip(subscription: str, key: str, reason: str) -> None:
    """Drop KEY's parked events for SUBSCRIPTION unapplied, and say why."""
    with _application("parked skip") as application:
        skipped = _on_parked(
            lambda found: application.runner.skip(found, key, _operator(), reason),
            application, subscription,
        )  # fmt: skip
        click.echo(f"skipped {skipped} event(s) of {key}; its later events flow again")


def _on_parked(
    act: Callable[[Subscriber], int], application: Application, subscription: str
) -> int:
    try:
        found = application.subscriber(subscription)
    except KeyError:
        raise click.BadParameter("no such subscription", param_hint="SUBSCRIPTION") from None
    try:
        return act(found)
    except LookupError as missing:
        raise click.ClickException(str(missing)) from None
    except (ParkedKeyBusy, StillFailing) as failed:
        raise click.ClickException(f"{type(failed).__name__}: {failed}") from None


def _operator() -> str:
    """Who acts from the command line, for the parking log."""
    return f"cli:{getpass.getuser()}"


@main.group()
def admins() -> None:
    """Create, list, rotate the token of, or disable the named admins.

    ADMIN_TOKEN stays the bootstrap credential (an operator, recorded as admin:bootstrap):
    use it to start, give each person their own admin, then keep it as a break-glass
    credential in the secret store (docs/RUNBOOK.md, "Admins")."""


@admins.command("create")
@click.argument("login")
@click.option("--role", type=click.Choice(ROLES), required=True, help="A viewer only reads.")
def admins_create(login: str, role: str) -> None:
    """Create the admin LOGIN and print their token, once (only its hash is kept)."""
    with _application("admins create") as application:
        try:
            account, token = application.admins.create(login, role, _operator())
        except AdminError as refused:
            raise click.ClickException(str(refused)) from None
    click.echo(f"created {account.login} ({account.role}), admin id {account.admin_id}")
    _echo_token(token)


@admins.command("list")
def admins_list() -> None:
    """Every admin, with their role, who created them and whether they are disabled."""
    with _application("admins list") as application:
        found = application.admins.listing()
    if not found:
        click.echo("no named admins yet (only ADMIN_TOKEN signs in)")
        return
    rows = [("login", "role", "admin id", "created", "created by", "disabled")]
    rows += [
        (a.login, a.role, a.admin_id, f"{a.created_at:%Y-%m-%d %H:%M}", a.created_by,
         f"{a.disabled_at:%Y-%m-%d %H:%M}" if a.disabled_at else "-")
        for a in found
    ]  # fmt: skip
    _echo_table(rows)


@admins.command("rotate")
@click.argument("login")
def admins_rotate(login: str) -> None:
    """Give LOGIN a new token (printed once); the old one, and the dashboard sessions
    signed in with it, stop working at once."""
    with _application("admins rotate") as application:
        try:
            token = application.admins.rotate(login)
        except AdminError as refused:
            raise click.ClickException(str(refused)) from None
    click.echo(f"rotated the token of {login}; the old one no longer works")
    _echo_token(token)


@admins.command("disable")
@click.argument("login")
def admins_disable(login: str) -> None:
    """Stop every token and dashboard session of LOGIN (their actions stay in the log,
    under their name)."""
    with _application("admins disable") as application:
        try:
            application.admins.disable(login)
        except AdminError as refused:
            raise click.ClickException(str(refused)) from None
    click.echo(f"disabled {login}")


def _echo_token(token: str) -> None:
    click.echo("token (shown only now; hand it over privately):")
    click.echo(token)


def _rate(started: float, done: Callable[[], int]) -> Callable[[object], str]:
    def show(_: object) -> str:
        elapsed = time.monotonic() - started
        return f"{done() / elapsed:.0f} events/s" if elapsed > 0 else ""

    return show
