"""The browser tests retake the README's screenshots (tracked under docs/screenshots/)
only when asked with SHOP_SCREENSHOTS=1: a plain `make test` leaves the work tree alone.
No browser needed: a stand-in page records what it is asked to save."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from playwright.sync_api import Page

from tests.browser import conftest
from tests.browser.conftest import RETAKE_SCREENSHOTS, screenshot


class PageStandIn:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def screenshot(self, **options: Any) -> bytes:
        self.saved.append(options)
        Path(options["path"]).write_bytes(b"png")
        return b"png"


@pytest.fixture
def pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "screenshots"
    monkeypatch.setattr(conftest, "SCREENSHOTS", folder)
    return folder


@pytest.mark.parametrize("setting", [None, "", "0", "yes"])
def test_screenshots_are_not_written_unless_asked(
    setting: str | None, pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if setting is None:
        monkeypatch.delenv(RETAKE_SCREENSHOTS, raising=False)
    else:
        monkeypatch.setenv(RETAKE_SCREENSHOTS, setting)
    page = PageStandIn()

    screenshot(cast(Page, page), "orders")

    assert page.saved == []
    assert not pictures.exists()


def test_screenshots_are_retaken_with_shop_screenshots_1(
    pictures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RETAKE_SCREENSHOTS, "1")
    page = PageStandIn()

    screenshot(cast(Page, page), "orders")

    assert page.saved == [{"path": str(pictures / "orders.png"), "full_page": True}]
    assert (pictures / "orders.png").read_bytes() == b"png"
