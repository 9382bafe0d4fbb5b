"""The engine semantics of issue 15 as `journeyflow simulate` shows them: what a marketer
trying a journey before publishing it sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.messages import Message, parse_message
from journeyflow.simulate import SeedProfile, simulate

EXAMPLES = Path(__file__).parents[2] / "examples/journeys"
T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.journey").read_text(encoding="utf-8")


def track(event: str, at: datetime, mid: str, user: str = "u1", **props: Any) -> Message:
    return parse_message({"type": "track", "event": event, "userId": user, "properties": props,
                          "timestamp": at.isoformat(), "messageId": mid}, at)


def test_purchases_that_add_up_to_3000_make_a_super_user_through_the_order_journey() -> None:
    purchases = [track("purchase", T0 + timedelta(days=i), f"p{i}", order_id=f"o{i}", amount=amount)
                 for i, amount in enumerate((1200, 1300, 700))]
    lines = simulate([example("order_confirmation"), example("super_user_upgrade")], purchases,
                     until=T0 + timedelta(days=4))
    super_steps = [line["step"] for line in lines if line["journey"] == "super-user-upgrade"]
    assert super_steps[:2] == ["member_prices", "welcome_gift"]
    first = next(line for line in lines if line["journey"] == "super-user-upgrade")
    assert first["at"] == (T0 + timedelta(days=2)).isoformat()  # the third order crossed 3000


def test_a_held_push_is_shown_cancelled_when_the_user_exits_before_it_goes() -> None:
    source = '''journey "Nudge"
  trigger event "signup"
  exit on event "purchase"
  quiet hours 22:00-08:00
  timezone "UTC"

  @hello send push "hello"
'''
    late = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    lines = simulate([source], [track("signup", late, "s1"), track("purchase", late + timedelta(hours=1), "p1")],
                     until=late + timedelta(days=1))
    [line] = lines
    assert line["step"] == "hello" and line["status"] == "cancelled" and line["reason"] == "cancelled: exit rule"


def test_a_goal_that_ends_the_run_stops_later_nudges() -> None:
    source = '''journey "Trial"
  trigger event "signup"
  goal "bought" on event "purchase" within 14d then exit

  @first send sms "day 0"
  wait 3d
  @second send sms "day 3"
'''
    lines = simulate([source], [track("signup", T0, "s1"), track("purchase", T0 + timedelta(days=1), "p1")],
                     until=T0 + timedelta(days=10))
    assert [line["step"] for line in lines] == ["first"]


def test_calendar_days_and_an_unknown_zone_in_simulation() -> None:
    source = '''journey "Daily"
  trigger event "signup"
  timezone "America/New_York"

  wait 1 day
  @next send sms "same time tomorrow"
'''
    nine = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # 09:00 in New York, before the spring-forward
    seeds = [SeedProfile("u1", timezone="Mars/Olympus_Mons")]
    lines = simulate([source], [track("signup", nine, "s1")], seeds=seeds, until=nine + timedelta(days=2))
    assert [line["at"] for line in lines] == ["2026-03-08T13:00:00+00:00"]  # 09:00 EDT, 23 hours later


def test_the_installations_zone_is_the_last_fallback() -> None:
    source = '''journey "Morning"
  trigger event "signup"

  wait until 10:00
  @hello send sms "good morning"
'''
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    lines = simulate([source], [track("signup", noon, "s1")], default_zone="Asia/Tokyo",
                     seeds=[SeedProfile("u1", timezone="Mars/Olympus_Mons")], until=noon + timedelta(days=2))
    assert [line["at"] for line in lines] == ["2026-06-02T01:00:00+00:00"]  # 10:00 in Tokyo
