"""The shipped gunicorn.conf.py, read as gunicorn reads it: threaded workers, a worker
count from WEB_CONCURRENCY (else one per core, at least two), bounded timeouts and
request sizes, no control socket shared with every other gunicorn on the host; and
`shop run` serves the API with it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]

from config.cli import GUNICORN_CONFIG, api_command

ROOT = Path(__file__).resolve().parents[2]


def shipped(monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    """gunicorn's configuration after reading the file (as `-c` or ./gunicorn.conf.py
    does: every module-level name that is a setting sets it, through its validator)."""
    for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    for name, value in runpy.run_path(str(GUNICORN_CONFIG)).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_the_configuration_is_the_one_at_the_project_root() -> None:
    assert GUNICORN_CONFIG == ROOT / "gunicorn.conf.py"  # where `gunicorn wsgi:app` looks
    assert GUNICORN_CONFIG.is_file()


def test_workers_are_threaded_so_a_slow_client_holds_a_thread_not_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = shipped(monkeypatch)

    assert config.worker_class_str == "gthread"
    assert config.threads == 4
    assert config.workers >= 2


def test_worker_and_thread_counts_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = shipped(monkeypatch, WEB_CONCURRENCY="3", GUNICORN_THREADS="8")

    assert (config.workers, config.threads) == (3, 8)
    with pytest.raises(ValueError, match="WEB_CONCURRENCY"):
        shipped(monkeypatch, WEB_CONCURRENCY="0")


def test_timeouts_and_request_limits_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    config = shipped(monkeypatch)

    assert 0 < config.timeout <= 60
    assert 0 < config.graceful_timeout <= config.timeout
    assert 0 < config.keepalive <= 10
    assert 0 < config.limit_request_line <= 4094
    assert 0 < config.limit_request_fields <= 100
    assert 0 < config.limit_request_field_size <= 8190


def test_no_control_socket_is_shared_with_other_gunicorns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Config().control_socket_disable is False  # gunicorn's default: ~/.gunicorn/...
    assert shipped(monkeypatch).control_socket_disable is True


def test_shop_run_and_the_suites_start_gunicorn_with_it() -> None:
    command = api_command("127.0.0.1:8000", "--workers", "1")

    config_at = command.index("-c")
    assert command[config_at + 1] == str(GUNICORN_CONFIG)
    assert command[-1] == "wsgi:app"
    assert command.index("--workers") > config_at  # an option given overrides the file
