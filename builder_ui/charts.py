"""The report's charts as SVG text, drawn on the server: no chart library, no JavaScript.

Every mark carries a `<title>` with its numbers, which browsers show on hover and screen
readers read out. Labels (step ids, arm names) come from journey text people typed, so every
attribute and text is escaped here (`quoteattr`, `escape`) and the result is marked safe only
once, when it is whole. Colours come from classes styled in `static/report.css`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

WIDTH, HEIGHT = 760, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 14, 30
ROW = 30  # height of one bar or one arm
LABEL_WIDTH = 200  # room for step and arm names left of bars and whiskers
MAX_DOTS = 62  # above this many buckets a line has no dots (the hover bands still tell each value)
X_LABELS = 6  # dates written under a time chart


@dataclass(frozen=True)
class Scale:
    """A linear map from data (`lo`..`hi`) to pixels (`start`..`end`)."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.hi == self.lo:
            return self.start
        return self.start + (value - self.lo) / (self.hi - self.lo) * (self.end - self.start)


@dataclass(frozen=True)
class Series:
    name: str  # "entered": also its CSS class, series-entered
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    share: float | None  # of the journey's entries


@dataclass(frozen=True)
class Whisker:
    label: str
    entered: int
    converted: int
    low: float
    high: float
    control: bool = False

    @property
    def rate(self) -> float:
        return self.converted / self.entered if self.entered else 0.0


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


def ticks(maximum: float, count: int = 4) -> list[float]:
    """`count` + 1 evenly spaced values from 0 to `maximum`."""
    return [maximum * i / count for i in range(count + 1)]


def time_chart(buckets: Sequence[datetime], series: Sequence[Series], granularity: str, *, title: str) -> Markup:
    """Lines over time, the first one filled as an area. Each bucket has a full-height band
    whose title lists every series' value then, so hovering anywhere on a day shows that day."""
    if not buckets or not any(any(s.values) for s in series):
        return _empty(title, "No runs in this period yet.")
    top = nice_ceiling(max(max(s.values, default=0) for s in series))
    x = Scale(0, max(len(buckets) - 1, 1), MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    y = Scale(0, top, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    parts = [_y_axis(y, top)]
    every = max(1, math.ceil(len(buckets) / X_LABELS))
    parts += [_text(_when(b, granularity), x(i), HEIGHT - 10, "axis-label", anchor="middle")
              for i, b in enumerate(buckets) if i % every == 0]
    for n, s in enumerate(series):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        if n == 0:
            area = f"{x(0):.1f},{y(0):.1f} {points} {x(len(s.values) - 1):.1f},{y(0):.1f}"
            parts.append(_tag("polygon", {"class": f"area series-{s.name}", "points": area}))
        parts.append(_tag("polyline", {"class": f"line series-{s.name}", "points": points}))
        if len(buckets) <= MAX_DOTS:
            parts += [_tag("circle", {"class": f"dot series-{s.name}", "cx": f"{x(i):.1f}", "cy": f"{y(v):.1f}",
                                      "r": "3"}) for i, v in enumerate(s.values)]
    half = (x(1) - x(0)) / 2 if len(buckets) > 1 else (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / 2
    for i, bucket in enumerate(buckets):
        told = ", ".join(f"{s.values[i]:,} {s.name}" for s in series)
        parts.append(_tag("rect", {"class": "band", "x": f"{x(i) - half:.1f}", "y": str(MARGIN_TOP),
                                   "width": f"{2 * half:.1f}", "height": str(HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)},
                          _title(f"{_when(bucket, granularity)}: {told}")))
    legend = [_text(s.name, MARGIN_LEFT + 10 + 110 * n, MARGIN_TOP + 2, f"legend series-{s.name}")
              for n, s in enumerate(series)]
    return _svg(title, WIDTH, HEIGHT, [*parts, *legend])


def funnel_chart(bars: Sequence[Bar], *, title: str) -> Markup:
    """One bar per step along the main path, as long as the users who entered it."""
    if not bars or not any(b.value for b in bars):
        return _empty(title, "Nobody has entered these steps yet.")
    height = MARGIN_TOP * 2 + ROW * len(bars)
    x = Scale(0, max(b.value for b in bars), LABEL_WIDTH, WIDTH - MARGIN_RIGHT - 110)
    parts = []
    for i, bar in enumerate(bars):
        top = MARGIN_TOP + i * ROW
        share = "" if bar.share is None else f", {bar.share * 100:.1f}% of journey entries"
        said = f"{bar.label}: {bar.value:,} entered{share}"
        parts.append(_text(bar.label, LABEL_WIDTH - 8, top + ROW / 2 + 4, "axis-label", anchor="end"))
        parts.append(_tag("rect", {"class": "bar", "x": str(LABEL_WIDTH), "y": f"{top + 4}",
                                   "width": f"{max(x(bar.value) - LABEL_WIDTH, 1):.1f}", "height": str(ROW - 8)},
                          _title(said)))
        note = f"{bar.value:,}" + ("" if bar.share is None else f" · {bar.share * 100:.1f}%")
        parts.append(_text(note, x(bar.value) + 6, top + ROW / 2 + 4, "value"))
    return _svg(title, WIDTH, height, parts)


def arms_chart(arms: Sequence[Whisker], *, title: str) -> Markup:
    """Each arm's conversion rate as a dot, its 95% interval as a whisker; the control is a
    square and says so, so the eye compares every other arm against it."""
    if not arms or not any(a.entered for a in arms):
        return _empty(title, "No user has reached this split yet.")
    height = MARGIN_TOP + ROW * len(arms) + MARGIN_BOTTOM
    top_rate = nice_ceiling(max(a.high for a in arms))
    x = Scale(0, top_rate, LABEL_WIDTH, WIDTH - MARGIN_RIGHT - 20)
    bottom = height - MARGIN_BOTTOM
    parts = [_tag("line", {"class": "grid", "x1": f"{x(t):.1f}", "x2": f"{x(t):.1f}", "y1": str(MARGIN_TOP),
                           "y2": str(bottom)}) for t in ticks(top_rate)]
    parts += [_text(f"{t * 100:.0f}%" if top_rate >= 0.04 else f"{t * 100:.1f}%", x(t), bottom + 16,
                    "axis-label", anchor="middle") for t in ticks(top_rate)]
    for i, arm in enumerate(arms):
        middle = MARGIN_TOP + i * ROW + ROW / 2
        name = f"{arm.label} (control)" if arm.control and arm.label != "control" else arm.label
        said = (f"{name}: {arm.converted:,} of {arm.entered:,} converted, "
                f"{arm.rate * 100:.1f}% (95% CI {arm.low * 100:.1f}%–{arm.high * 100:.1f}%)")
        parts.append(_text(name, LABEL_WIDTH - 8, middle + 4, "axis-label", anchor="end"))
        whisker = _tag("line", {"class": "whisker", "x1": f"{x(arm.low):.1f}", "x2": f"{x(arm.high):.1f}",
                                "y1": f"{middle:.1f}", "y2": f"{middle:.1f}"})
        if arm.control:
            mark = _tag("rect", {"class": "estimate control", "x": f"{x(arm.rate) - 5:.1f}", "y": f"{middle - 5:.1f}",
                                 "width": "10", "height": "10"})
        else:
            mark = _tag("circle", {"class": "estimate", "cx": f"{x(arm.rate):.1f}", "cy": f"{middle:.1f}", "r": "5"})
        parts.append(_tag("g", {"class": "arm"}, _title(said) + whisker + mark))
    return _svg(title, WIDTH, height, parts)


# --------------------------------------------------------------------------- SVG text


def _tag(name: str, attrs: dict[str, str], inner: str = "") -> str:
    """One element; `inner` must already be SVG text built here (escaped)."""
    written = "".join(f" {key}={quoteattr(value)}" for key, value in attrs.items())
    return f"<{name}{written}>{inner}</{name}>" if inner else f"<{name}{written}/>"


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _text(text: str, x: float, y: float, css: str, anchor: str = "start") -> str:
    return _tag("text", {"class": css, "x": f"{x:.1f}", "y": f"{y:.1f}", "text-anchor": anchor}, escape(text))


def _svg(title: str, width: int, height: int, parts: list[str]) -> Markup:
    attrs = {"xmlns": "http://www.w3.org/2000/svg", "class": "chart", "viewBox": f"0 0 {width} {height}",
             "role": "img", "aria-label": title}
    return Markup(_tag("svg", attrs, _title(title) + "".join(parts)))  # every part escaped above


def _empty(title: str, message: str) -> Markup:
    return _svg(title, WIDTH, 80, [_text(message, WIDTH / 2, 44, "empty-state", anchor="middle")])


def _y_axis(y: Scale, top: float) -> str:
    parts = []
    for t in ticks(top):
        parts.append(_tag("line", {"class": "grid", "x1": str(MARGIN_LEFT), "x2": str(WIDTH - MARGIN_RIGHT),
                                   "y1": f"{y(t):.1f}", "y2": f"{y(t):.1f}"}))
        parts.append(_text(_count(t), MARGIN_LEFT - 6, y(t) + 4, "axis-label", anchor="end"))
    return "".join(parts)


def _count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _when(moment: datetime, granularity: str) -> str:
    return moment.strftime("%b %d %H:00" if granularity == "hour" else "%b %d")
