"""Five-field cron expressions (`minute hour day-of-month month day-of-week`), parsed once.

Pure: no clock. The engine asks `next_fire(spec, after)` with its own clock's time, in the
user's zone. Day-of-month and day-of-week combine as in Vixie cron: when both are restricted,
a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .numerals import ascii_digits

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))
_NAMES = {
    "month": {n: i for i, n in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)},
    "day of week": {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_SEARCH_DAYS = 366 * 8  # covers every leap-year-only schedule


class CronError(ValueError):
    """A cron expression that cannot be used; the message says which field and why."""


@dataclass(frozen=True)
class CronSpec:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_date or by_weekday
        return by_date and by_weekday


def _value(text: str, name: str, low: int, high: int) -> int:
    names = _NAMES.get(name, {})
    if text.lower() in names:
        return names[text.lower()]
    if not ascii_digits(text) or len(text) > 4:  # no field goes past 59: and int() of 5,000 digits raises
        raise CronError(f"{name}: {text[:20]!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{name}: {number} is outside {low}-{high}")
    return number


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not ascii_digits(step_text) or len(step_text) > 4 or int(step_text) == 0:
                raise CronError(f"{name}: step {step_text[:20]!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, name, low, high), _value(last, name, low, high)
            if start > end:
                raise CronError(f"{name}: range {body!r} runs backwards")
        else:
            start = _value(body, name, low, high)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


def parse_cron(expression: str) -> CronSpec:
    text = _MACROS.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"a schedule has 5 fields (minute hour day month weekday), not {len(fields)}")
    parsed = [_field(f, name, low, high) for f, (name, low, high) in zip(fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in parsed[4])
    return CronSpec(parsed[0], parsed[1], parsed[2], parsed[3], weekdays,
                    days_restricted=fields[2] != "*", weekdays_restricted=fields[4] != "*")


def next_fire(spec: CronSpec, after: datetime) -> datetime | None:
    """The first matching minute strictly after `after` (same tzinfo), or None if none exists
    (such as 30 February)."""
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for _ in range(_SEARCH_DAYS):
        if spec.day_matches(day):
            for hour in sorted(spec.hours):
                for minute in sorted(spec.minutes):
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
    return None
