"""Wall-clock arithmetic in a user's own zone: `wait until`, quiet hours.

Everything takes and returns aware UTC datetimes; the zone is only used to find local times.
DST: a local time that does not exist (skipped by a spring-forward) is taken as the same wall
time after the jump (02:30 becomes 03:30); a local time that happens twice (fall-back) is taken
the first time. Both are what `zoneinfo` does with fold=0, and both are pinned by tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS_PER_WEEK = 7
MAX_ZONE_NAME = 64  # the longest tz database name is about 30 characters


@cache
def zone(name: str | None) -> tzinfo:
    """The zone for a name; unknown or missing names are UTC rather than an error, because a
    profile's time zone is data sent by producers and must not stop a journey."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@cache
def known_zone(name: object) -> tzinfo | None:
    """The zone a name stands for, or None when it is missing or not a zone the tz database
    knows (`"Mars/Olympus_Mons"`, `""`, a number): the caller then falls back."""
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_NAME:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def first_zone(*names: object) -> tzinfo:
    """The first of `names` that is a known zone, UTC when none is. The engine passes the
    user's zone, then the journey's, then the installation's: an unknown name falls back
    exactly as a missing one does."""
    for name in names:
        found = known_zone(name)
        if found is not None:
            return found
    return UTC


def add_local_days(now: datetime, days: int, where: tzinfo) -> datetime:
    """The instant `days` calendar days after `now` at the same local time of day in `where`:
    `wait 2 days` from 09:00 is 09:00, even when a DST change makes those days 47 or 49 hours.
    A wall time the change skips is taken after the gap, as everywhere in this module."""
    local = now.astimezone(where)
    wall = local.replace(tzinfo=None) + timedelta(days=days)
    return wall.replace(tzinfo=where).astimezone(UTC)


def _at_local(day: datetime, at: time, where: tzinfo) -> datetime:
    local = datetime(day.year, day.month, day.day, at.hour, at.minute, tzinfo=where)
    # Round-trip through UTC so that a non-existent wall time lands after the gap.
    return local.astimezone(UTC)


def next_local_time(now: datetime, at: time, where: tzinfo, weekday: int | None = None) -> datetime:
    """The first instant strictly after `now` whose local time in `where` is `at` (on
    `weekday`, 0 = Monday, if given)."""
    local_now = now.astimezone(where)
    for days_ahead in range(DAYS_PER_WEEK + 2):
        day = local_now + timedelta(days=days_ahead)
        if weekday is not None and day.weekday() != weekday:
            continue
        candidate = _at_local(day, at, where)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: some day within 9 matches")  # pragma: no cover


def in_quiet_hours(now: datetime, start: time, end: time, where: tzinfo) -> bool:
    """Whether `now` falls in [start, end) local time; a window with start > end spans midnight."""
    local = now.astimezone(where).time().replace(second=0, microsecond=0, tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(now: datetime, start: time, end: time, where: tzinfo) -> datetime:
    """When a send due at `now` may go out: `now` itself, or the end of the quiet window."""
    if not in_quiet_hours(now, start, end, where):
        return now
    return next_local_time(now, end, where)
