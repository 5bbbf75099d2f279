"""The template filters of the dashboard's pages: money, short ids, times and rates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

NOTHING = "\u2013"  # an en dash, for a value that is not there


def money(amount: int | None, currency: str = "") -> str:
    if amount is None:
        return NOTHING
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(int(amount)), 100)
    return f"{sign}{major:,}.{minor:02d} {currency}".strip()


def short_id(value: str | None) -> str:
    return (value or "")[:8]


def when(value: str | datetime | None) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM:SS` UTC."""
    if not value:
        return NOTHING
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def percent(value: float | None) -> str:
    return NOTHING if value is None else f"{value * 100:.1f} %"


FILTERS: dict[str, Callable[..., str]] = {
    "money": money,
    "short_id": short_id,
    "when": when,
    "percent": percent,
}
