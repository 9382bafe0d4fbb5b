"""Whole numbers from the builder's URLs and forms, read so that no text reaches a 500.

`int()` reads more than a browser's link ever holds (`" 7"`, `"1_000"`, Arabic-Indic digits)
and raises ValueError past 4,300 digits; a number that `int()` does read may still be too large
for the integer column it is compared with, which the database refuses mid-request. So only
ASCII digits are read, and only up to the column's maximum; anything else is no number (None),
which each page answers as it answers a missing one.
"""

from __future__ import annotations

MAX_INTEGER = 2**31 - 1  # ids and version numbers are 32-bit INTEGER columns on PostgreSQL


def whole(raw: str | None, maximum: int = MAX_INTEGER) -> int | None:
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw.lstrip("0")) > len(str(maximum)):
        return None
    value = int(raw)
    return value if value <= maximum else None
