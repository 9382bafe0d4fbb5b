"""Seeded profiles in a simulation: a person who exists before the events, with traits, tags,
a time zone and identities, and no history."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.messages import Message
from journeyflow.simulate import SeedProfile, simulate

JOURNEY = """journey "Welcome back"
  trigger event "visit"
  audience "vip" in user.tags and count of "visit" ever == 1
  quiet hours 21:00-09:00

  @hello send sms "Hi {{ user.first_name }}"
"""
LATE = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, 16:00 in Paris


def visit(user_id: str) -> list[Message]:
    return [Message("track", "m-1", LATE, user_id=user_id, event="visit")]


def test_a_seeded_profile_is_the_one_the_events_find() -> None:
    seed = SeedProfile("u-1", {"first_name": "Lin"}, ("vip",), "Asia/Shanghai")
    lines = simulate([JOURNEY], visit("u-1"), seeds=[seed])
    assert [(line["at"], line["content"]) for line in lines] == [("2026-06-02T01:00:00+00:00", "Hi Lin")]


def test_its_own_zone_decides_quiet_hours() -> None:
    seed = SeedProfile("u-1", {"first_name": "Lin"}, ("vip",), "Europe/Paris")
    assert [line["at"] for line in simulate([JOURNEY], visit("u-1"), seeds=[seed])] == ["2026-06-01T14:00:00+00:00"]


def test_identity_traits_and_given_identities_are_attached() -> None:
    seed = SeedProfile("u-1", {"phone": "13800000000"}, (), None, (("email", "lin@example.com"),))
    assert seed.all_identities() == [("user_id", "u-1"), ("email", "lin@example.com"), ("phone", "13800000000")]
    by_phone = Message("track", "m-1", LATE, anonymous_id="a-1", event="visit", traits={})
    lines = simulate([JOURNEY.replace('"vip" in user.tags and ', "")], [by_phone], trace=True,
                     seeds=[SeedProfile("u-1", {"first_name": "Lin"}, (), None, (("anonymous_id", "a-1"),))])
    assert {line["user_id"] for line in lines} == {"u-1"}  # the anonymous visit found the seeded person


def test_without_seeds_nothing_changes() -> None:
    assert simulate([JOURNEY], visit("u-1")) == []  # a new profile has no "vip" tag
