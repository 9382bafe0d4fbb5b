"""Local-time arithmetic, pinned on the awkward days: DST gaps and overlaps, midnight windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from engine.timing import add_local_days, first_zone, in_quiet_hours, known_zone, next_local_time, quiet_hours_end, zone

SHANGHAI = zone("Asia/Shanghai")
PARIS = zone("Europe/Paris")
NEW_YORK = zone("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "at", "where", "weekday", "expected"),
    [
        # Shanghai is UTC+8 all year: 09:00 local is 01:00 UTC
        (utc(2026, 3, 1, 0, 0), time(9, 0), SHANGHAI, None, utc(2026, 3, 1, 1, 0)),
        (utc(2026, 3, 1, 1, 0), time(9, 0), SHANGHAI, None, utc(2026, 3, 2, 1, 0)),  # strictly after
        # Monday 2026-11-23 10:00 Shanghai = 02:00 UTC; asked at 02:00 UTC, next Monday
        (utc(2026, 11, 23, 2, 0), time(10, 0), SHANGHAI, 0, utc(2026, 11, 30, 2, 0)),
        (utc(2026, 11, 23, 1, 59), time(10, 0), SHANGHAI, 0, utc(2026, 11, 23, 2, 0)),
        # Paris springs forward on 2026-03-29 at 02:00 -> 03:00: 02:30 does not exist that day,
        # so it is taken as 03:30 CEST = 01:30 UTC
        (utc(2026, 3, 28, 23, 0), time(2, 30), PARIS, None, utc(2026, 3, 29, 1, 30)),
        # 09:00 on either side of the change keeps its wall time
        (utc(2026, 3, 28, 9, 0), time(9, 0), PARIS, None, utc(2026, 3, 29, 7, 0)),
        # New York falls back on 2026-11-01: 01:30 happens twice; the first one (EDT) is taken
        (utc(2026, 11, 1, 4, 0), time(1, 30), NEW_YORK, None, utc(2026, 11, 1, 5, 30)),
    ],
)
def test_next_local_time(now: datetime, at: time, where: object, weekday: int | None, expected: datetime) -> None:
    assert next_local_time(now, at, where, weekday) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("local", "start", "end", "inside"),
    [
        ((22, 0), time(21, 0), time(9, 0), True),
        ((8, 59), time(21, 0), time(9, 0), True),
        ((9, 0), time(21, 0), time(9, 0), False),  # the end is open
        ((21, 0), time(21, 0), time(9, 0), True),
        ((12, 0), time(21, 0), time(9, 0), False),
        ((13, 0), time(12, 0), time(14, 0), True),  # a window inside one day
        ((14, 0), time(12, 0), time(14, 0), False),
    ],
)
def test_in_quiet_hours(local: tuple[int, int], start: time, end: time, inside: bool) -> None:
    now = datetime(2026, 6, 1, *local, tzinfo=SHANGHAI).astimezone(UTC)
    assert in_quiet_hours(now, start, end, SHANGHAI) is inside


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_users_zone() -> None:
    late = datetime(2026, 6, 1, 23, 15, tzinfo=SHANGHAI).astimezone(UTC)
    assert quiet_hours_end(late, time(21, 0), time(9, 0), SHANGHAI) == datetime(2026, 6, 2, 9, 0, tzinfo=SHANGHAI)
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)
    assert quiet_hours_end(noon, time(21, 0), time(9, 0), SHANGHAI) == noon


def test_unknown_or_missing_zone_is_utc() -> None:
    assert zone("Mars/Olympus") is UTC
    assert zone(None) is UTC
    assert zone("") is UTC


@pytest.mark.parametrize(
    ("start", "days", "end", "hours"),
    [
        # Spring forward (2026-03-08 02:00 -> 03:00): one calendar day is 23 hours.
        (datetime(2026, 3, 7, 9, 0), 1, datetime(2026, 3, 8, 9, 0), 23),
        # Fall back (2026-11-01 02:00 -> 01:00): one calendar day is 25 hours.
        (datetime(2026, 10, 31, 9, 0), 1, datetime(2026, 11, 1, 9, 0), 25),
        (datetime(2026, 3, 6, 9, 0), 2, datetime(2026, 3, 8, 9, 0), 47),
        (datetime(2026, 6, 1, 9, 0), 7, datetime(2026, 6, 8, 9, 0), 168),
        # A wall time the change skips is taken after the gap (02:30 is 03:30 EDT).
        (datetime(2026, 3, 7, 2, 30), 1, datetime(2026, 3, 8, 3, 30), 24),
    ],
)
def test_calendar_days_keep_the_local_time_across_dst(start: datetime, days: int, end: datetime, hours: int) -> None:
    begin = start.replace(tzinfo=NEW_YORK).astimezone(UTC)
    finish = add_local_days(begin, days, NEW_YORK)
    assert finish.astimezone(NEW_YORK).replace(tzinfo=None) == end
    assert finish - begin == timedelta(hours=hours)


def test_first_zone_skips_missing_and_unknown_names() -> None:
    assert first_zone("Mars/Olympus_Mons", None, "Asia/Shanghai") == SHANGHAI
    assert first_zone("", "Europe/Nowhere", 42, "UTC") is not None
    assert first_zone(None, None) is UTC
    assert known_zone("Mars/Olympus_Mons") is None
    assert known_zone("../../etc/passwd") is None
    assert known_zone("x" * 500) is None
    assert known_zone("America/New_York") == NEW_YORK
