from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dsl.cron import CronError, next_fire, parse_cron

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 9 * * *", datetime(2026, 3, 1, 8, 59), datetime(2026, 3, 1, 9, 0)),
        ("0 9 * * *", datetime(2026, 3, 1, 9, 0), datetime(2026, 3, 2, 9, 0)),  # strictly after
        ("*/15 * * * *", datetime(2026, 3, 1, 10, 7, 30), datetime(2026, 3, 1, 10, 15)),
        ("0 10 * * mon", datetime(2026, 11, 23, 10, 0), datetime(2026, 11, 30, 10, 0)),  # 23rd is a Monday
        ("0 0 29 2 *", datetime(2026, 1, 1), datetime(2028, 2, 29, 0, 0)),
        ("0 8 1 * 1-5", datetime(2026, 11, 28, 9, 0), datetime(2026, 11, 30, 8, 0)),  # either day rule
        ("30 23 31 12 *", datetime(2026, 12, 31, 23, 31), datetime(2027, 12, 31, 23, 30)),
        ("@daily", datetime(2026, 5, 5, 12, 0), datetime(2026, 5, 6, 0, 0)),
        ("0 9 * * 7", datetime(2026, 11, 23), datetime(2026, 11, 29, 9, 0)),  # 7 is Sunday too
    ],
)
def test_next_fire(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(parse_cron(expression), after) == expected


def test_next_fire_keeps_the_zone() -> None:
    fired = next_fire(parse_cron("0 9 * * *"), datetime(2026, 1, 1, 10, 0, tzinfo=SHANGHAI))
    assert fired == datetime(2026, 1, 2, 9, 0, tzinfo=SHANGHAI)


def test_impossible_date_never_fires() -> None:
    assert next_fire(parse_cron("0 0 30 2 *"), datetime(2026, 1, 1)) is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 9 * *", "5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("0 9 * * funday", "day of week: 'funday' is not a number"),
        ("0 9-7 * * *", "runs backwards"),
        ("*/0 * * * *", "step '0'"),
        ("0 ² * * *", "hour: '²' is not a number"),  # str.isdigit says yes, int() says no
        ("0 ١٢ * * *", "hour: '١٢' is not a number"),  # int() would take it as 12
        ("9" * 5000 + " * * * *", "minute: '9999"),  # int() refuses past 4,300 digits
        ("*/" + "9" * 5000 + " * * * *", "minute: step '9999"),
    ],
)
def test_errors_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(expression)
