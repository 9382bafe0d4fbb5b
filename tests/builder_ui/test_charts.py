"""The report's SVG charts: well-formed, scaled right, every mark titled with its numbers,
an empty state when there is nothing to draw, and labels escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from builder_ui import charts

SVG = "{http://www.w3.org/2000/svg}"
DAY = datetime(2026, 1, 5, tzinfo=UTC)


def parsed(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def titles(svg: ElementTree.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}title")]


@pytest.mark.parametrize(("value", "ceiling"), [
    (0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (0.042, 0.05), (0.21, 0.25), (1234, 2000), (2400, 2500),
])
def test_the_axis_ends_on_a_round_number(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def test_a_scale_maps_the_domain_onto_the_pixels() -> None:
    y = charts.Scale(0, 200, 230, 14)  # upwards, as on screen
    assert (y(0), y(100), y(200)) == (230, 122, 14)
    assert charts.Scale(5, 5, 10, 20)(5) == 10  # a flat domain does not divide by zero


def test_a_time_chart_titles_each_bucket_with_every_series() -> None:
    buckets = [DAY + timedelta(days=i) for i in range(3)]
    svg = parsed(charts.time_chart(buckets, [charts.Series("entered", [10, 40, 20]),
                                             charts.Series("converted", [1, 4, 2])], "day", title="Over time"))
    assert svg.get("role") == "img" and svg.get("aria-label") == "Over time"
    assert "Jan 06: 40 entered, 4 converted" in titles(svg)
    dots = [c for c in svg.iter(f"{SVG}circle") if "series-entered" in (c.get("class") or "")]
    ys = [float(c.get("cy") or 0) for c in dots]
    top, bottom = charts.MARGIN_TOP, charts.HEIGHT - charts.MARGIN_BOTTOM
    assert ys[1] == pytest.approx(bottom - (bottom - top) * 40 / 50)  # 40 on an axis ending at 50
    assert ys[0] == pytest.approx(bottom - (bottom - top) * 10 / 50)
    xs = [float(c.get("cx") or 0) for c in dots]
    assert xs[0] == charts.MARGIN_LEFT and xs[-1] == charts.WIDTH - charts.MARGIN_RIGHT


def test_hourly_buckets_are_named_by_their_hour_and_long_ranges_drop_the_dots() -> None:
    buckets = [DAY + timedelta(hours=i) for i in range(charts.MAX_DOTS + 1)]
    svg = parsed(charts.time_chart(buckets, [charts.Series("entered", [1] * len(buckets))], "hour", title="t"))
    assert "Jan 05 03:00: 1 entered" in titles(svg)
    assert not list(svg.iter(f"{SVG}circle"))
    assert len([r for r in svg.iter(f"{SVG}rect") if r.get("class") == "band"]) == len(buckets)


@pytest.mark.parametrize("drawn", [
    charts.time_chart([], [], "day", title="t"),
    charts.time_chart([DAY], [charts.Series("entered", [0])], "day", title="t"),
    charts.funnel_chart([charts.Bar("a", 0, None)], title="t"),
    charts.arms_chart([charts.Whisker("a", 0, 0, 0.0, 1.0)], title="t"),
])
def test_nothing_to_draw_draws_an_empty_state(drawn: str) -> None:
    svg = parsed(drawn)
    assert [t.get("class") for t in svg.iter(f"{SVG}text")] == ["empty-state"]


def test_funnel_bars_are_as_long_as_their_entries() -> None:
    bars = [charts.Bar("welcome", 200, 1.0), charts.Bar("offer", 50, 0.25)]
    svg = parsed(charts.funnel_chart(bars, title="Funnel"))
    rects = {r.find(f"{SVG}title").text: float(r.get("width") or 0)  # type: ignore[union-attr]
             for r in svg.iter(f"{SVG}rect")}
    assert rects["welcome: 200 entered, 100.0% of journey entries"] == pytest.approx(
        4 * rects["offer: 50 entered, 25.0% of journey entries"])


def test_arms_show_rate_interval_and_the_control() -> None:
    arms = [charts.Whisker("a", 200, 20, 0.066, 0.149, control=True), charts.Whisker("b", 180, 36, 0.148, 0.264)]
    svg = parsed(charts.arms_chart(arms, title="Arms"))
    said = titles(svg)
    assert "a (control): 20 of 200 converted, 10.0% (95% CI 6.6%–14.9%)" in said
    assert "b: 36 of 180 converted, 20.0% (95% CI 14.8%–26.4%)" in said
    control = [r for r in svg.iter(f"{SVG}rect") if "control" in (r.get("class") or "")]
    assert len(control) == 1  # a square for the control, dots for the others
    x = charts.Scale(0, 0.5, charts.LABEL_WIDTH, charts.WIDTH - charts.MARGIN_RIGHT - 20)  # 26.4% -> axis to 50%
    dot = next(svg.iter(f"{SVG}circle"))
    assert float(dot.get("cx") or 0) == pytest.approx(x(0.2), abs=0.05)
    whisker = [w for w in svg.iter(f"{SVG}line") if w.get("class") == "whisker"][1]
    assert (float(whisker.get("x1") or 0), float(whisker.get("x2") or 0)) == pytest.approx((x(0.148), x(0.264)),
                                                                                            abs=0.05)


def test_labels_are_escaped() -> None:
    nasty = '</title><script>alert("x")</script>&'
    drawn = str(charts.funnel_chart([charts.Bar(nasty, 3, 1.0)], title=nasty))
    assert "<script>" not in drawn
    svg = parsed(drawn)
    assert svg.get("aria-label") == nasty
    assert f"{nasty}: 3 entered, 100.0% of journey entries" in titles(svg)
