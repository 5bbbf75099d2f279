from __future__ import annotations

import pytest

from config.bootstrap import Application
from tests.support.shop import Shop


@pytest.fixture
def shop(application: Application) -> Shop:
    return Shop(application.bus, application.provider_calls)
