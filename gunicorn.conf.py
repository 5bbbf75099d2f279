"""gunicorn's configuration for the shop's API: `gunicorn wsgi:app`.

gunicorn reads ./gunicorn.conf.py when started from this directory; from anywhere else
pass it: `gunicorn -c /path/to/gunicorn.conf.py wsgi:app`. `shop run` and the test
suites start gunicorn with this file too. Options given on the command line win over
it; the environment variables below tune it without editing it. See README.md,
"Serving in production", for the reverse proxy it expects in front.

It imports nothing of the shop, so a wrong setting never hides behind the app's own
start-up errors (and the app's refusal to start without its configuration stays the
first thing an operator sees).
"""

from __future__ import annotations

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)  # a typo stops gunicorn at start, naming the value
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return value


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Threads, not one request per process: gunicorn's default `sync` worker serves one
# connection at a time, from the first byte of the request to the last of the answer,
# so a client that sends its headers slowly (or a slow network) holds a whole process.
# `gthread` gives each worker a pool of threads: such a client holds one thread, and
# idle keep-alive connections wait in the worker's poller, holding none. The app is
# I/O bound (PostgreSQL, Redis) and thread safe (a connection pool per process).
worker_class = "gthread"
threads = _positive("GUNICORN_THREADS", 4)
# Processes: WEB_CONCURRENCY (gunicorn's own variable), else one per core, at least
# two, so one busy or restarting process never leaves the API without an answer.
# Each process holds its own PostgreSQL pool (5 connections, up to 15 under load).
workers = _positive("WEB_CONCURRENCY", max(2, _cores()))

# A worker whose main loop has not checked in for `timeout` seconds is killed and
# replaced (with gthread that means the process is stuck, not a slow request: requests
# are bounded by the app itself, STATEMENT_TIMEOUT and READ_WAIT_TIMEOUT). On SIGTERM
# workers get `graceful_timeout` seconds to finish the requests they are answering.
timeout = 30
graceful_timeout = 20
# Seconds an idle keep-alive connection stays open. Behind a proxy that keeps upstream
# connections alive, set the proxy's idle timeout lower than this (nginx:
# `keepalive_timeout 4s;` in the upstream block), so gunicorn never closes a
# connection the proxy is about to reuse.
keepalive = 5

# Request size limits, refused with a 400 before the app sees them: the request line
# (method, path and query), the number of header fields and the size of each. The
# API's paths, cursors, bearer tokens and the dashboard's cookie fit well inside; the
# body is limited by the app (MAX_REQUEST_BYTES).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# gunicorn 25.1+ opens a control socket for `gunicornc` at a fixed path per user
# ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl), which every gunicorn
# on the host run by that user shares: a second instance takes it over from the
# first, and its removal on exit breaks the other's. Nothing of the shop uses it, so
# it is off (older gunicorns ignore the setting). Manage workers with signals
# (HUP reloads, TTIN / TTOU add or remove one, TERM stops gracefully).
control_socket_disable = True

# The app writes one JSON log line per request itself: no access log here. gunicorn's
# own messages (worker starts, timeouts) go to stderr at the shop's LOG_LEVEL.
accesslog = None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
proc_name = "shop-api"

# Workers check in by touching a file every second; on a disk-backed /tmp (some
# container images) that can stall the worker, so use memory where there is some.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# X-Forwarded-Proto (https) is trusted from these addresses only: the proxy's. The
# default (FORWARDED_ALLOW_IPS, else 127.0.0.1,::1) fits a proxy on the same host.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
