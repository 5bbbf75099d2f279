"""Chart geometry for server-side SVG: the templates draw, this module measures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int
    note: str  # drawn above the bar (e.g. an order count), empty for none
    title: str  # tooltip


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class AxisLabel:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    plot_left: int
    plot_right: int
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[AxisLabel]


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    value: int
    note: str
    title: str


def bar_chart(
    points: Sequence[Point],
    *,
    width: int = 760,
    height: int = 240,
) -> BarChart:
    """Bars from zero (values in minor units), a y axis with four ticks in major units
    and a few x labels (first, middle, last)."""
    left, right, top, bottom = 64, width - 12, 20, height - 28
    peak = max((point.value for point in points), default=0)
    scale_max = _nice_ceiling(peak)
    slot = (right - left) / max(len(points), 1)
    gap = min(4.0, slot * 0.2)
    bars = []
    for index, point in enumerate(points):
        bar_height = (bottom - top) * point.value / scale_max if scale_max else 0.0
        bars.append(
            Bar(
                x=round(left + index * slot + gap / 2, 2),
                y=round(bottom - bar_height, 2),
                width=round(max(slot - gap, 1.0), 2),
                height=round(bar_height, 2),
                label=point.label,
                value=point.value,
                note=point.note if slot >= 14 else "",
                title=point.title,
            )
        )
    ticks = [
        Tick(round(bottom - (bottom - top) * step / 4, 2), _format(scale_max * step / 4))
        for step in range(5)
    ]
    shown = sorted({0, len(points) // 2, len(points) - 1}) if points else []
    labels = [AxisLabel(round(left + (i + 0.5) * slot, 2), points[i].label) for i in shown]
    return BarChart(width, height, top, bottom, left, right, bars, ticks, labels)


@dataclass(frozen=True, slots=True)
class Sparkline:
    width: int
    height: int
    points: str  # SVG polyline points
    last_x: float
    last_y: float
    peak: int


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 24) -> Sparkline | None:
    """A line through the values, scaled to the box (None for fewer than two values)."""
    if len(values) < 2:
        return None
    peak = max(values)
    step = (width - 4) / (len(values) - 1)
    coords = []
    for index, value in enumerate(values):
        x = 2 + index * step
        y = height - 2 - ((height - 4) * value / peak if peak else 0)
        coords.append((round(x, 1), round(y, 1)))
    points = " ".join(f"{x},{y}" for x, y in coords)
    return Sparkline(width, height, points, coords[-1][0], coords[-1][1], peak)


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value`."""
    if value <= 0:
        return 0.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for factor in (1, 2, 2.5, 5, 10):
        if magnitude * factor >= value:
            return magnitude * factor
    return magnitude * 10


def _format(value: float) -> str:
    """Minor units as major units with no decimals past what the tick needs."""
    major = value / 100
    if major >= 1000:
        return f"{major / 1000:g}k"
    return f"{major:g}"
