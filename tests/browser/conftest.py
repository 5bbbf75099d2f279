"""The real system for browser tests: gunicorn serving the API and the dashboard,
one `rq worker` running the saga and the read models, and headless Chromium
(the machine's, at /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from config.bootstrap import Application
from config.settings import Settings
from tests.support.processes import (
    ROOT,
    Processes,
    environment,
    free_port,
    wait_for_workers,
    wait_until_ready,
)
from tests.support.state import reset_state

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
RETAKE_SCREENSHOTS = "SHOP_SCREENSHOTS"
"""Set to 1 to retake the README's pictures (docs/screenshots/*.png, tracked by git)."""


@dataclass(frozen=True)
class Stack:
    base_url: str
    logs: Path


@pytest.fixture(scope="module")
def stack(
    settings: Settings, application: Application, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """An empty shop served by gunicorn (two workers) with one RQ worker and a payments
    worker (charging at the session's local Stripe)."""
    reset_state(application)
    logs = tmp_path_factory.mktemp("browser-stack")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # Its own metrics directory: the counters of this test process stay out of its scrapes.
    env = environment(
        settings,
        PUBLIC_URL=base_url,
        SWEEP_INTERVAL="1",
        PROMETHEUS_MULTIPROC_DIR=str(logs / "metrics"),
    )
    try:
        with Processes(logs) as processes:
            api = processes.api(env, port)
            worker = processes.worker(env)
            wait_until_ready(base_url, api)
            wait_for_workers(settings.require()[1], [worker, *processes.payments_workers])
            yield Stack(base_url, logs)
    finally:
        reset_state(application)


def _install_chromium() -> None:
    """Install the machine's Chromium from Debian's packages (the test setup needs root)."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError("the browser tests need Chromium at /usr/bin/chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _install_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """One browser tab for the whole module, like an operator's."""
    context = browser.new_context(
        base_url=stack.base_url, viewport={"width": 1280, "height": 860}, device_scale_factor=1
    )
    context.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Retake the README's picture of the page, only when asked (SHOP_SCREENSHOTS=1):
    the pictures are tracked, and a plain test run must leave the work tree as it was."""
    if os.environ.get(RETAKE_SCREENSHOTS) != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
