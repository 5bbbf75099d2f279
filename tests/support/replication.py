"""A private PostgreSQL primary with a streaming replica of it, for the replica tests.

The shared test server refuses replication connections (its pg_hba.conf has no
`replication` line), and a base backup of a server other runs use would copy all their
databases; so the primary is always our own: a fresh `initdb` with the binaries pgserver
ships (the embedded path's too), then `pg_basebackup -R` streams the replica from it.
Both listen on 127.0.0.1 on free ports, live in a temporary directory and are stopped
and deleted by `stop()`. PostgreSQL refuses to run as root, so as root they run as the
`postgres` (else `pgserver`) OS user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pgserver
import psycopg

from localdev.servers import pid_alive
from tests.support.processes import free_port

BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
# Quick and test-sized: no fsync, a replica that cancels a conflicting query after a
# second instead of holding replay back for 30 s.
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    " -c wal_level=replica -c max_wal_senders=4 -c max_connections=60"
    " -c max_standby_streaming_delay=1s -c wal_receiver_status_interval=1s"
)


@dataclass(frozen=True)
class Replication:
    """A running primary and its replica: their server URLs (database `postgres`)."""

    primary_url: str
    replica_url: str
    directory: Path
    run_as: str | None

    def url(self, server: str, database: str) -> str:
        """The URL of `database` on the primary or the replica."""
        base = self.primary_url if server == "primary" else self.replica_url
        return base.rsplit("/", 1)[0] + f"/{database}"

    @contextlib.contextmanager
    def replica_down(self) -> Iterator[None]:
        """The replica stopped (as a crash would: immediate), started again on leaving."""
        data = self.directory / "replica"
        _run(self.run_as, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        try:
            yield
        finally:
            port = int(self.replica_url.rsplit(":", 1)[1].split("/", 1)[0])
            _start(self.run_as, data, port, self.directory)

    def stop(self) -> None:
        for name in ("replica", "primary"):
            if (self.directory / name / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):  # not running
                    _run(self.run_as, "pg_ctl", "-D", str(self.directory / name), "-m",
                         "immediate", "-w", "stop")  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)


PREFIX = "shop-replication-"
OWNER = "owner.pid"  # the test process the servers of a directory belong to


def start_replication() -> Replication:
    run_as = _server_user()
    _stop_orphans(run_as)
    directory = Path(tempfile.mkdtemp(prefix=PREFIX))
    (directory / OWNER).write_text(str(os.getpid()))
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(directory, account.pw_uid, account.pw_gid)
    primary, replica = directory / "primary", directory / "replica"
    primary_port, replica_port = free_port(), free_port()
    started = Replication(
        f"postgresql://postgres@127.0.0.1:{primary_port}/postgres",
        f"postgresql://postgres@127.0.0.1:{replica_port}/postgres",
        directory,
        run_as,
    )
    try:
        _run(run_as, "initdb", "-D", str(primary), "-U", "postgres", "--auth=trust",
             "--encoding=utf8", "--no-sync")  # fmt: skip
        _start(run_as, primary, primary_port, directory)
        _run(run_as, "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port),
             "-U", "postgres", "-D", str(replica), "-R", "-X", "stream", "-c", "fast",
             "--no-sync")  # fmt: skip
        _start(run_as, replica, replica_port, directory)
    except BaseException:
        started.stop()
        raise
    return started


def caught_up(replication: Replication, timeout: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary has written so far (on
    the servers' `postgres` databases: one just created may not be on the replica yet)."""
    with psycopg.connect(replication.primary_url, autocommit=True) as primary:
        written = primary.execute("SELECT pg_current_wal_lsn()").fetchone()
    assert written is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(replication.replica_url, autocommit=True) as replica:
        while True:
            row = replica.execute(
                "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", written
            ).fetchone()
            if row is not None and row[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not catch up")
            time.sleep(0.02)


def _stop_orphans(run_as: str | None) -> None:
    """Stop and delete the servers of test runs that died without stopping them (killed)."""
    for directory in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((directory / OWNER).read_text())
        except (OSError, ValueError):
            continue  # being set up right now, or not ours
        if not pid_alive(owner):
            Replication("", "", directory, run_as).stop()


def _start(run_as: str | None, data: Path, port: int, sockets: Path) -> None:
    options = f"{SERVER_OPTIONS} -p {port} -k {sockets}"
    _run(run_as, "pg_ctl", "-D", str(data), "-o", options, "-l", str(data / "server.log"),
         "-w", "-t", "60", "start")  # fmt: skip


def _run(run_as: str | None, program: str, *args: str) -> None:
    command: Sequence[str] = [str(BIN / program), *args]
    if run_as is not None:
        command = ["runuser", "-u", run_as, "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def _server_user() -> str | None:
    """Whom the servers run as: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    from pgserver.utils import ensure_user_exists  # creates the user pgserver itself uses

    ensure_user_exists("pgserver")
    return "pgserver"
