"""The simulation panel's input: event lines with times, traits, the sample profile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder_ui.sample import (
    MAX_EVENTS,
    InputProblems,
    SimulationInput,
    TimedEvent,
    format_events,
    parse_events,
    parse_profile,
    parse_traits,
    profile_fields,
)

START = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_offsets_dates_pairs_and_json() -> None:
    text = ("# the lens cross-sell\n"
            "+0m purchase category=care_solution amount=58\n"
            "\n"
            '+2d12h product_viewed category=lens sku="L 1D 30" viewed=true\n'
            '2026-06-08T10:00 purchase {"category": "lens", "items": [1, 2]}\n')
    events = parse_events(text, START, SHANGHAI)
    assert events == [
        TimedEvent(START, "purchase", {"category": "care_solution", "amount": 58}),
        TimedEvent(START + timedelta(days=2, hours=12), "product_viewed",
                   {"category": "lens", "sku": "L 1D 30", "viewed": True}),
        TimedEvent(datetime(2026, 6, 8, 2, 0, tzinfo=UTC), "purchase", {"category": "lens", "items": [1, 2]}),
    ]


def test_events_come_in_time_order_and_text_order_among_equal_times() -> None:
    events = parse_events("+1d b\n+0m a\n+1d c\n", START, UTC)
    assert [e.name for e in events] == ["a", "b", "c"]


@pytest.mark.parametrize(("line", "where"), [
    ("2d purchase", "line 1, column 1: '2d' is not a time: write +2d12h or 2026-06-01T22:00: 2d purchase"),
    ("+2x purchase", "line 1, column 1: '+2x' is not an offset such as +0m, +2d or +1d12h: +2x purchase"),
    ("+1d", "line 1, column 4: an event name is missing after the time: +1d"),
    ("+1d {x}", "line 1, column 5: '{x}' is not an event name (letters, digits, _ . : -): +1d {x}"),
    ("+1d buy amount", "line 1, column 9: 'amount' is not key=value (quote a value with spaces): +1d buy amount"),
    ('+1d buy a="x"y', "line 1, column 9: 'a=\"x\"y' is not key=value (quote a value with spaces): +1d buy a=\"x\"y"),
    ("+1d buy a=1 a=2", "line 1, column 13: 'a' is given twice: +1d buy a=1 a=2"),
    ('+1d buy {"a": }', "line 1, column 15: the properties are not JSON: Expecting value: +1d buy {\"a\": }"),
    ("+1d buy [1]", "line 1, column 9: '[1]' is not key=value (quote a value with spaces): +1d buy [1]"),
    ("+401d buy", "line 1, column 1: the time must be from the start to 400 days after it: +401d buy"),
    ("2026-05-01T00:00 buy", "line 1, column 1: the time must be from the start to 400 days after it: "
                             "2026-05-01T00:00 buy"),
])
def test_each_bad_line_is_named_with_its_column_and_text(line: str, where: str) -> None:
    with pytest.raises(InputProblems) as raised:
        parse_events(f"+0m fine\n{line}", START, UTC)
    assert raised.value.problems == [where.replace("line 1", "line 2", 1)]


def test_every_bad_line_is_reported_at_once_and_the_count_is_capped() -> None:
    with pytest.raises(InputProblems) as raised:
        parse_events("x\n+0m ok\ny\n", START, UTC)
    assert [p.split(",")[0] for p in raised.value.problems] == ["line 1", "line 3"]
    with pytest.raises(InputProblems, match=f"at most {MAX_EVENTS}"):
        parse_events("+0m e\n" * (MAX_EVENTS + 1), START, UTC)


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3), st.dictionaries(_keys, _scalars, max_size=2))
_events = st.lists(st.builds(lambda seconds, name, props: TimedEvent(START + timedelta(seconds=seconds), name, props),
                             st.integers(0, 400 * 86_400), _names, st.dictionaries(_keys, _values, max_size=4)),
                   max_size=8).map(lambda events: sorted(events, key=lambda e: e.at))


@given(_events)
def test_formatted_events_read_back_the_same(events: list[TimedEvent]) -> None:
    assert parse_events(format_events(events, START), START, SHANGHAI) == events


def test_traits_as_lines_or_json() -> None:
    assert parse_traits("first_name = 小林\nvisits = 3\nvip = true\n# note\n") == {
        "first_name": "小林", "visits": 3, "vip": True}
    assert parse_traits('{"first_name": "Lin", "points": {"total": 5}}') == {
        "first_name": "Lin", "points": {"total": 5}}
    with pytest.raises(InputProblems, match="traits, line 2: write key = value: nonsense"):
        parse_traits("a = 1\nnonsense")


def test_a_profile_reads_back_from_its_own_fields() -> None:
    form = {"user_id": "u-1", "traits": "first_name = Lin\nphone = \"13800000000\"\n", "tags": "member, vip",
            "timezone": "Asia/Shanghai", "identities": "email=lin@example.com"}
    profile = parse_profile(form)
    assert profile.traits == {"first_name": "Lin", "phone": "13800000000"}
    assert profile.tags == ("member", "vip")
    assert profile.all_identities() == [("user_id", "u-1"), ("email", "lin@example.com"), ("phone", "13800000000")]
    assert parse_profile(profile_fields(profile)) == profile


def test_all_the_form_problems_together() -> None:
    given_input = SimulationInput.of({"user_id": "", "timezone": "Mars/Base", "start": "soon", "events": "+0m a"})
    with pytest.raises(InputProblems) as raised:
        given_input.read(None)
    assert raised.value.problems == [
        "user id: is required (the events are this user's)",
        "time zone: 'Mars/Base' is not a zone name such as Asia/Shanghai",
        "start: 'soon' is not a date and time such as 2026-06-01 22:00",
    ]


def test_the_start_is_read_in_the_users_zone_else_the_journeys() -> None:
    form = {"user_id": "u", "start": "2026-06-01 22:00", "events": "+0m a"}
    _, events, _ = SimulationInput.of(form).read("Asia/Shanghai")
    assert events[0].at == datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    _, events, _ = SimulationInput.of({**form, "timezone": "Europe/Paris"}).read("Asia/Shanghai")
    assert events[0].at == datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
