"""Durations as the language writes them (`30d`, `1h30m`), held as whole seconds."""

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
