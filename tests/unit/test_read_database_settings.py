"""READ_DATABASE_URL: the streaming replicas queries read from."""

from __future__ import annotations

import pytest

from config.settings import Settings


def replicas(raw: str) -> tuple[str, ...]:
    return Settings.from_env({"READ_DATABASE_URL": raw}).read_database_urls


def test_without_it_queries_read_from_the_primary() -> None:
    assert Settings.from_env({}).read_database_urls == ()
    assert replicas("") == ()


def test_one_replica() -> None:
    assert replicas("postgresql://shop@replica-1:5432/shop") == (
        "postgresql://shop@replica-1:5432/shop",
    )


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://shop@r1/shop,postgresql://shop@r2/shop",
        "postgresql://shop@r1/shop, postgresql://shop@r2/shop",
        "postgresql://shop@r1/shop postgresql://shop@r2/shop",
        " postgresql://shop@r1/shop\n  postgres://shop@r2/shop ",
    ],
)
def test_several_replicas_by_commas_or_spaces(raw: str) -> None:
    first, second = replicas(raw)
    assert first == "postgresql://shop@r1/shop"
    assert second.endswith("://shop@r2/shop")


def test_a_comma_inside_a_url_is_libpqs_list_of_hosts() -> None:
    multi_host = "postgresql://shop@r1:5432,r2:5432/shop?target_session_attrs=any"
    assert replicas(multi_host) == (multi_host,)
    assert replicas(f"{multi_host},postgresql://shop@r3/shop") == (
        multi_host,
        "postgresql://shop@r3/shop",
    )


def test_the_same_replica_twice_is_one() -> None:
    assert replicas("postgresql://r1/shop postgresql://r1/shop") == ("postgresql://r1/shop",)


@pytest.mark.parametrize("raw", ["replica-1:5432", "redis://r1/0", "mysql://r1/shop"])
def test_anything_but_postgresql_urls_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="READ_DATABASE_URL"):
        replicas(raw)
