"""Schedule ticks in users' own zones, pure: fire times across DST, the next tick over many
zones, catch-up per zone, and which raw `profiles.timezone` values a tick selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from dsl.cron import CronSpec, parse_cron
from engine.schedules import (
    EVERYONE,
    Members,
    Schedule,
    ZoneValue,
    due_tick,
    fire_after,
    fires_at,
    latest_fire,
    next_tick,
    schedule_of,
    tick_members,
)
from engine.timing import zone

SHANGHAI, LONDON, NEW_YORK = zone("Asia/Shanghai"), zone("Europe/London"), zone("America/New_York")
DAY = timedelta(days=1)
VALUES: list[ZoneValue] = ["Asia/Shanghai", "Europe/London", "America/New_York", None, "Mars/Olympus_Mons"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(zone_mode: str = "user", journey_zone: str | None = "Asia/Tokyo") -> list[Schedule]:
    return [schedule_of("30 9 * * *", zone_mode, journey_zone, "UTC")]


# --------------------------------------------------------------------------- one zone


def test_a_fire_is_the_local_time_as_an_instant_strictly_after() -> None:
    spec = parse_cron("30 9 * * *")
    assert fire_after(spec, SHANGHAI, utc(2026, 6, 1, 0, 0)) == utc(2026, 6, 1, 1, 30)
    assert fire_after(spec, SHANGHAI, utc(2026, 6, 1, 1, 30)) == utc(2026, 6, 2, 1, 30)
    assert fire_after(spec, LONDON, utc(2026, 6, 1, 1, 30)) == utc(2026, 6, 1, 8, 30)  # BST
    assert fire_after(spec, LONDON, utc(2026, 12, 1, 1, 30)) == utc(2026, 12, 1, 9, 30)  # GMT
    assert fire_after(parse_cron("0 0 30 2 *"), UTC, utc(2026, 1, 1)) is None


def test_a_time_skipped_by_dst_fires_after_the_jump_even_when_asked_from_after_the_jump() -> None:
    # New York springs forward on 2026-03-08 at 02:00 -> 03:00: 02:30 is taken as 03:30 EDT.
    spec = parse_cron("30 2 * * *")
    assert fire_after(spec, NEW_YORK, utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 8, 7, 30)
    # 07:10 UTC is 03:10 EDT, later on the wall than 02:30, yet the fire (07:30) is still ahead.
    assert fire_after(spec, NEW_YORK, utc(2026, 3, 8, 7, 10)) == utc(2026, 3, 8, 7, 30)
    assert fires_at(spec, NEW_YORK, utc(2026, 3, 8, 7, 30))


def test_a_repeated_time_fires_the_first_time_only() -> None:
    # New York falls back on 2026-11-01 at 02:00 -> 01:00: 01:30 happens at 05:30 and 06:30 UTC.
    spec = parse_cron("30 1 * * *")
    assert fire_after(spec, NEW_YORK, utc(2026, 11, 1, 4, 0)) == utc(2026, 11, 1, 5, 30)
    assert fire_after(spec, NEW_YORK, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)
    assert fire_after(spec, NEW_YORK, utc(2026, 11, 1, 6, 0)) == utc(2026, 11, 2, 6, 30)  # never earlier
    assert not fires_at(spec, NEW_YORK, utc(2026, 11, 1, 6, 30))


def test_latest_fire_is_the_last_one_up_to_the_end() -> None:
    hourly = parse_cron("0 * * * *")
    assert latest_fire(hourly, UTC, utc(2026, 6, 1), utc(2026, 6, 3, 7, 59)) == utc(2026, 6, 3, 7, 0)
    assert latest_fire(hourly, UTC, utc(2026, 6, 3, 7, 0), utc(2026, 6, 3, 7, 59)) is None  # after is excluded
    assert latest_fire(parse_cron("30 9 * * *"), SHANGHAI, utc(2026, 6, 1), utc(2026, 6, 1, 1, 30)) == utc(
        2026, 6, 1, 1, 30)  # until is included


# --------------------------------------------------------------------------- many zones


def test_user_zone_ticks_are_each_zones_fire_and_select_its_raw_values() -> None:
    found = daily()
    last = utc(2026, 6, 1, 0, 0)
    ticks = []
    while (tick := next_tick(found, VALUES, last)) is not None and tick < utc(2026, 6, 2, 0, 0):
        ticks.append((tick, tick_members(found, VALUES, tick, tick)))
        last = tick
    assert ticks == [
        (utc(2026, 6, 1, 0, 30), Members(False, frozenset({None, "Mars/Olympus_Mons"}))),  # Tokyo, the journey's
        (utc(2026, 6, 1, 1, 30), Members(False, frozenset({"Asia/Shanghai"}))),
        (utc(2026, 6, 1, 8, 30), Members(False, frozenset({"Europe/London"}))),
        (utc(2026, 6, 1, 13, 30), Members(False, frozenset({"America/New_York"}))),
    ]


def test_the_fallback_is_the_installations_zone_when_the_journey_has_none() -> None:
    found = [schedule_of("30 9 * * *", "user", None, "Asia/Shanghai")]
    at = utc(2026, 6, 1, 1, 30)
    assert next_tick(found, [None, "Asia/Shanghai"], utc(2026, 6, 1)) == at
    assert tick_members(found, [None, "Asia/Shanghai", "Mars/Olympus_Mons", "Europe/London"], at, at) == Members(
        False, frozenset({None, "Asia/Shanghai", "Mars/Olympus_Mons"}))


def test_zones_firing_at_one_instant_share_one_tick() -> None:
    found = daily()
    values: list[ZoneValue] = ["Asia/Shanghai", "Asia/Singapore", "Asia/Taipei"]  # all UTC+8
    at = next_tick(found, values, utc(2026, 6, 1))
    assert at == utc(2026, 6, 1, 1, 30)
    assert tick_members(found, values, at, at) == Members(False, frozenset(values))
    assert next_tick(found, values, at) == at + DAY


def test_journey_zone_is_one_instant_for_everyone() -> None:
    found = daily("journey", "Asia/Shanghai")
    at = next_tick(found, VALUES, utc(2026, 6, 1))
    assert at == utc(2026, 6, 1, 1, 30)
    assert tick_members(found, VALUES, at, at) == EVERYONE
    assert next_tick(found, VALUES, at) == at + DAY
    # an unknown journey zone falls back to the installation's
    assert next_tick([schedule_of("30 9 * * *", "journey", "Mars/Base", "Europe/London")], [], utc(2026, 6, 1)) == utc(
        2026, 6, 1, 8, 30)


def test_missed_ticks_catch_up_once_per_zone_with_its_latest_fire() -> None:
    found = daily()
    values: list[ZoneValue] = ["Asia/Shanghai", "Europe/London", "America/New_York"]
    last, now = utc(2026, 6, 1, 4, 0), utc(2026, 6, 4, 4, 0)  # down for three days
    ran = []
    while (due := due_tick(found, values, last, now, DAY)) is not None:
        ran.append((due, sorted(str(v) for v in tick_members(found, values, due, now).values)))
        last = due
    assert ran == [(utc(2026, 6, 3, 8, 30), ["Europe/London"]), (utc(2026, 6, 3, 13, 30), ["America/New_York"]),
                   (utc(2026, 6, 4, 1, 30), ["Asia/Shanghai"])]


def test_of_a_zones_missed_fires_only_the_latest_enters_it() -> None:
    # 09:00 and 10:00 daily, in UTC and UTC+1: at 09:00 UTC only Lagos is due (its 10:00);
    # London's 09:00 passed for its 10:00, which comes next.
    found = [schedule_of("0 9,10 * * *", "user", None, "UTC")]
    values: list[ZoneValue] = ["UTC", "Africa/Lagos"]
    last, now = utc(2026, 6, 1, 7, 30), utc(2026, 6, 1, 10, 30)
    assert due_tick(found, values, last, now, DAY) == utc(2026, 6, 1, 9, 0)
    assert tick_members(found, values, utc(2026, 6, 1, 9, 0), now) == Members(False, frozenset({"Africa/Lagos"}))
    assert due_tick(found, values, utc(2026, 6, 1, 9, 0), now, DAY) == utc(2026, 6, 1, 10, 0)
    assert tick_members(found, values, utc(2026, 6, 1, 10, 0), now) == Members(False, frozenset({"UTC"}))


# --------------------------------------------------------------------------- properties

ZONE_VALUES: list[ZoneValue] = [
    "Asia/Shanghai", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
    "Pacific/Apia", "America/St_Johns", "Asia/Singapore", "UTC", None, "", "Mars/Olympus_Mons",
]
TRANSITIONS = [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1),
               utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30), utc(2011, 12, 30, 10)]
crons = st.builds(
    lambda minutes, hours, weekdays: f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} "
                                     f"* * {','.join(map(str, sorted(weekdays))) if weekdays else '*'}",
    st.sets(st.integers(0, 59), min_size=1, max_size=3), st.sets(st.integers(0, 23), min_size=1, max_size=4),
    st.sets(st.integers(0, 6), max_size=3))
instants = st.one_of(
    st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1), timezones=st.just(UTC)),
    st.builds(lambda base, minutes: base + timedelta(minutes=minutes), st.sampled_from(TRANSITIONS),
              st.integers(-3 * 24 * 60, 3 * 24 * 60)),
    st.builds(lambda base, minutes: base + timedelta(minutes=minutes), st.sampled_from(TRANSITIONS),
              st.integers(-3 * 60, 3 * 60)))


def _oracle(spec: CronSpec, where: tzinfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire in [start, end], by definition: each matching wall minute of the days around,
    read with fold=0 (a skipped time after the gap, a repeated one the first time)."""
    day = start.astimezone(where).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0) - 2 * DAY
    found = set()
    while day <= end.astimezone(where).replace(tzinfo=None) + 2 * DAY:
        if spec.day_matches(day):
            for hour in spec.hours:
                for minute in spec.minutes:
                    moment = day.replace(hour=hour, minute=minute, tzinfo=where).astimezone(UTC)
                    if start <= moment <= end:
                        found.add(moment)
        day += DAY
    return sorted(found)


@settings(max_examples=300, deadline=None)
@given(cron=crons, value=st.sampled_from(ZONE_VALUES), after=instants)
def test_fire_after_is_the_first_fire_by_definition(cron: str, value: ZoneValue, after: datetime) -> None:
    spec = parse_cron(cron)
    where = schedule_of(cron, "user", "Asia/Tokyo", "UTC").zone_of(value)
    expected = _oracle(spec, where, after + timedelta(microseconds=1), after + 9 * DAY)
    found = fire_after(spec, where, after)
    assert found == (expected[0] if expected else found)
    if expected:
        assert fires_at(spec, where, expected[0])


@settings(max_examples=60, deadline=None)
@given(cron=crons, values=st.lists(st.sampled_from(ZONE_VALUES), min_size=1, max_size=6, unique=True),
       start=instants)
def test_each_user_enters_at_each_fire_of_their_own_zone_once(cron: str, values: list[ZoneValue],
                                                              start: datetime) -> None:
    found = [schedule_of(cron, "user", "Asia/Tokyo", "UTC")]
    end = start + 3 * DAY
    entries: dict[ZoneValue, list[datetime]] = {value: [] for value in values}
    ticks: list[datetime] = []
    last = start
    while (tick := next_tick(found, values, last)) is not None and tick <= end:
        chosen = tick_members(found, values, tick, tick)
        assert chosen.values, "a tick is for someone"
        for value in chosen.values:
            entries[value].append(tick)
        ticks.append(tick)
        last = tick
    assert ticks == sorted(set(ticks))  # ticks only go forward, each instant once
    for value in values:
        where = found[0].zone_of(value)
        assert entries[value] == _oracle(found[0].spec, where, start + timedelta(microseconds=1), end)


@settings(max_examples=60, deadline=None)
@given(cron=crons, values=st.lists(st.sampled_from(ZONE_VALUES), min_size=1, max_size=6, unique=True),
       last=instants, down=st.integers(0, 4 * 24 * 60))
def test_catching_up_enters_each_zone_at_most_once_with_its_latest_fire(cron: str, values: list[ZoneValue],
                                                                       last: datetime, down: int) -> None:
    found = [schedule_of(cron, "user", None, "Europe/Paris")]
    now = last + timedelta(minutes=down)
    window = max(last, now - DAY) + timedelta(microseconds=1), now
    latest = {value: _oracle(found[0].spec, found[0].zone_of(value), *window)[-1:] for value in values}
    entered: dict[ZoneValue, list[datetime]] = {value: [] for value in values}
    while (due := due_tick(found, values, last, now, DAY)) is not None:
        for value in tick_members(found, values, due, now).values:
            entered[value].append(due)
        last = due
    assert entered == latest


# (zone, the change as an instant, the local hour it skips or repeats; None: a whole day)
CHANGES = [("America/New_York", utc(2026, 3, 8, 7), 2), ("America/New_York", utc(2026, 11, 1, 6), 1),
           ("Europe/London", utc(2026, 3, 29, 1), 1), ("Europe/London", utc(2026, 10, 25, 1), 1),
           ("Australia/Lord_Howe", utc(2026, 4, 4, 15), 1), ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30), 2),
           ("Pacific/Apia", utc(2011, 12, 30, 10), None)]


@settings(max_examples=300, deadline=None)
@given(change=st.sampled_from(CHANGES), minutes=st.sets(st.integers(0, 59), min_size=1, max_size=3),
       hours=st.sets(st.integers(0, 23), max_size=2), near=st.integers(-120, 120))
def test_fire_after_is_exact_around_a_change_of_offset(change: tuple[str, datetime, int | None], minutes: set[int],
                                                       hours: set[int], near: int) -> None:
    name, moment, hour = change
    hours = hours | ({hour} if hour is not None else set()) or {0}
    cron = f"{','.join(map(str, sorted(minutes)))} {','.join(map(str, sorted(hours)))} * * *"
    spec, where = parse_cron(cron), zone(name)
    after = moment + timedelta(minutes=near)
    expected = _oracle(spec, where, after + timedelta(microseconds=1), after + 3 * DAY)
    assert fire_after(spec, where, after) == expected[0]
