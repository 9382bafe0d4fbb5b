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


def test_a_schedule_reads_each_users_clock_unless_it_says_journey_zone() -> None:
    morning = '''journey "Morning"
  trigger schedule "30 9 * * *"{zone}
  timezone "Asia/Shanghai"

  @hello send push "good morning"
'''
    seeds = [SeedProfile("sh", timezone="Asia/Shanghai"), SeedProfile("ny", timezone="America/New_York"),
             SeedProfile("mars", timezone="Mars/Olympus_Mons")]
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    clock_starts = [track("app_opened", start, "o1", user="sh")]  # the simulation's clock starts here
    per_user = simulate([morning.format(zone="")], clock_starts, until=start + timedelta(days=1), seeds=seeds)
    assert sorted((line["user_id"], line["at"]) for line in per_user) == [
        ("mars", "2026-06-01T01:30:00+00:00"),  # an unknown zone: the journey's, Shanghai
        ("ny", "2026-06-01T13:30:00+00:00"),  # 09:30 EDT
        ("sh", "2026-06-01T01:30:00+00:00"),
    ]
    once = simulate([morning.format(zone=" in journey zone")], clock_starts, until=start + timedelta(days=1),
                    seeds=seeds)
    assert [line["at"] for line in once] == ["2026-06-01T01:30:00+00:00"] * 3


def test_a_reentry_gets_the_code_the_person_already_holds() -> None:
    source = '''journey "Trial"
  trigger event "scan"
  entry always

  @trial issue coupon "TRIAL" as trial
  @sms send sms "code {{ trial.code }}"
'''
    lines = simulate([source], [track("scan", T0, "s1"), track("scan", T0 + timedelta(days=1), "s2")])
    assert [line["coupon_code"] for line in lines if line["channel"] == "coupon"] == ["TRIAL-0001", "TRIAL-0001"]
    assert [line["content"] for line in lines if line["channel"] == "sms"] == ["code TRIAL-0001"] * 2
