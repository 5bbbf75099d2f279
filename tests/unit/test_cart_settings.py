from __future__ import annotations

import pytest

from config.settings import Settings


def test_cart_ttl_defaults_to_a_week_and_is_read_in_seconds() -> None:
    assert Settings.from_env({}).cart_ttl == 7 * 24 * 3600
    assert Settings.from_env({"CART_TTL": "3600"}).cart_ttl == 3600


@pytest.mark.parametrize("raw", ["0", "-5", "a week"])
def test_cart_ttl_must_be_a_positive_number_of_seconds(raw: str) -> None:
    with pytest.raises(ValueError, match="CART_TTL"):
        Settings.from_env({"CART_TTL": raw})
