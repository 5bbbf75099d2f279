"""The SVG geometry: bars from zero on a round scale, a sparkline through the values."""

from __future__ import annotations

from dashboard.charts import Point, bar_chart, sparkline


def test_bars_stand_on_the_axis_and_the_tallest_fits_a_round_scale() -> None:
    chart = bar_chart([Point("a", 0, "", ""), Point("b", 7498, "3", ""), Point("c", 2500, "", "")])

    assert [tick.label for tick in chart.ticks] == ["0", "25", "50", "75", "100"]
    for bar in chart.bars:
        assert round(bar.y + bar.height, 2) == chart.plot_bottom
    tallest = chart.bars[1]
    assert tallest.height == round((chart.plot_bottom - chart.plot_top) * 7498 / 10000, 2)
    assert chart.bars[0].height == 0
    assert [label.label for label in chart.labels] == ["a", "b", "c"]


def test_a_sparkline_needs_two_values_and_spans_its_box() -> None:
    assert sparkline([5]) is None

    line = sparkline([0, 10, 5], width=100, height=20)

    assert line is not None and line.peak == 10
    assert line.points == "2.0,18.0 50.0,2.0 98.0,10.0"
