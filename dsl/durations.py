"""Durations as the language writes them (`30d`, `1h30m`), held as whole seconds; and the
calendar days of `wait 2 days` / `wait 1 week`, which count local days, not 24-hour spans."""

from __future__ import annotations

import re

SECOND = 1
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY

# `w` is accepted on input; the canonical form stops at days, because marketers count
# windows in days ("within 14d") and would not recognise their text as "2w".
UNIT_SECONDS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": SECOND}
_CANONICAL_UNITS = (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND))
_PART = re.compile(r"([0-9]+)([wdhms])")
_CALENDAR = re.compile(r"([0-9]+)\s+(day|week)s?")


def parse_duration(text: str) -> int:
    """Seconds in a duration token; the grammar has already checked its shape."""
    return sum(int(n) * UNIT_SECONDS[unit] for n, unit in _PART.findall(text))


def format_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in _CANONICAL_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_calendar_days(text: str) -> int:
    """Days in a calendar token (`2 days`, `1 week`); the grammar has already checked its shape."""
    found = _CALENDAR.fullmatch(text)
    assert found is not None, text
    count, unit = found.groups()
    return int(count) * (7 if unit == "week" else 1)


def format_calendar_days(days: int) -> str:
    """`1 day`, `2 days`: always in days, as `format_duration` stops at days, so that a text
    written in weeks and its formatted form read as the same count a marketer plans with."""
    return f"{days} day" if days == 1 else f"{days} days"
