from __future__ import annotations

import pytest

from config.bootstrap import Container
from tests.support.shop import Shop


@pytest.fixture
def shop(container: Container) -> Shop:
    return Shop(container.bus)
