"""The template filters of the dashboard's pages: money, short ids, times and rates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from kernel.money import MINOR_DIGITS

NOTHING = "\u2013"  # an en dash, for a value that is not there


def money(amount: int | None, currency: str = "") -> str:
    """Minor units as major ones, with the currency's own decimals (none for JPY)."""
    if amount is None:
        return NOTHING
    sign = "-" if amount < 0 else ""
    digits = MINOR_DIGITS.get(currency, 2)
    major, minor = divmod(abs(int(amount)), 10**digits)
    decimals = f".{minor:0{digits}d}" if digits else ""
    return f"{sign}{major:,}{decimals} {currency}".strip()


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


def duration(seconds: float | None) -> str:
    """A span of time as an operator reads it: 45 s, 12 min, 3.5 h, 2 d."""
    if seconds is None:
        return NOTHING
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


FILTERS: dict[str, Callable[..., str]] = {
    "money": money,
    "duration": duration,
    "short_id": short_id,
    "when": when,
    "percent": percent,
}
