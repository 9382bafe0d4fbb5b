"""A simulation read as a story: numbered visits, what happened at each, the messages as
rendered, and the line diff saved scenarios are compared by. Run on the real engine."""

from __future__ import annotations

from pathlib import Path

from builder_ui.outcome import difference
from builder_ui.sample import SimulationInput
from builder_ui.simulation_work import run

ROOT = Path(__file__).parents[2]
LENS = (ROOT / "examples/journeys/lens_care_buyers_to_lenses.journey").read_text(encoding="utf-8")
CAPPED = """journey "Caps"
  trigger event "buy"
  quiet hours 21:00-09:00
  timezone "Asia/Shanghai"
  frequency cap sms 1 message per 7d

  @first send sms "Hi {{ user.first_name }}, {{ event.sku }} is yours"
  @arms split "test":
    50%:
      pass
    50%:
      pass
  @second send sms "Again"
"""
BUYER = {"user_id": "u-1", "traits": "first_name = 小林\npush_token = tok-1\n", "tags": "member",
         "start": "2026-06-01 22:00"}


def test_the_lens_cross_sell_story() -> None:
    events = "+0m purchase category=care_solution\n+2d12h product_viewed category=lens\n+3d purchase category=lens\n"
    done = run(LENS, SimulationInput.of({**BUYER, "events": events}))
    assert done.zone_name == "Asia/Shanghai"
    assert done.outcome.readable() == [
        "path:",
        "  2026-06-01 22:00 entered the journey",
        "  2026-06-01 22:00 @tag_interest add tag interest_care_solution",
        "  2026-06-01 22:00 @settle wait 2d; waits until 2026-06-03 22:00",
        "  2026-06-03 22:00 @intro send push; deferred by quiet hours 21:00-09:00 to 2026-06-04 09:00; "
        "push sent at 2026-06-04 09:00",
        "  2026-06-03 22:00 @looked wait for product_viewed; waits until 2026-06-08 22:00; "
        "the awaited event arrived at 2026-06-04 10:00: took “received”",
        "  2026-06-04 10:00 @tag_lens_interest add tag interest_lens",
        "  2026-06-04 10:00 @first_order_coupon issue coupon LENS_FIRST_ORDER; coupon issued: LENS_FIRST_ORDER-0001",
        "  2026-06-04 10:00 @coupon_push send push; push sent at 2026-06-04 10:00",
        "  2026-06-04 10:00 completed: reached the end",
        "  2026-06-04 22:00 converted: goal “bought lenses” reached",
        "messages:",
        "  2026-06-04 09:00 @intro push: template lens_intro (rendered from the catalog when sent)",
        "  2026-06-04 10:00 @first_order_coupon coupon: LENS_FIRST_ORDER code LENS_FIRST_ORDER-0001",
        "  2026-06-04 10:00 @coupon_push push: [隐形眼镜首单立减 30 元] 小林，送你一张隐形眼镜首单券，"
        "下单时输入 LENS_FIRST_ORDER-0001 立减 30 元，7 天内有效。",
    ]
    assert done.outcome.visits == {"tag_interest": [1], "settle": [2], "intro": [3], "looked": [4],
                                   "tag_lens_interest": [5], "first_order_coupon": [6], "coupon_push": [7]}


def test_a_profile_outside_the_audience_does_not_enter() -> None:
    done = run(LENS, SimulationInput.of({**BUYER, "traits": "first_name = Lin\n", "events": "+0m purchase "
                                                                                           "category=care_solution"}))
    assert done.outcome.rows == [] and done.outcome.sent == []


def test_a_cap_suppresses_and_says_why_and_a_split_names_its_arm() -> None:
    done = run(CAPPED, SimulationInput.of({**BUYER, "events": "+0m buy sku=L-30"}))
    lines = done.outcome.readable()
    assert lines[2] == ("  2026-06-01 22:00 @first send sms; deferred by quiet hours 21:00-09:00 to 2026-06-02 09:00; "
                        "sms sent at 2026-06-02 09:00")
    assert lines[3].startswith("  2026-06-01 22:00 @arms split test; took arm ")
    assert lines[4] == ("  2026-06-01 22:00 @second send sms; suppressed, not sent: "
                        "frequency cap: 1 sms message(s) per 7d")
    assert lines[-2:] == ["  2026-06-01 22:00 @second sms: Again (SUPPRESSED: frequency cap: 1 sms message(s) per 7d)",
                          "  2026-06-02 09:00 @first sms: Hi 小林, L-30 is yours"]


def test_the_same_input_gives_the_same_readable_outcome() -> None:
    given = SimulationInput.of({**BUYER, "events": "+0m purchase category=care_solution\n"})
    assert run(LENS, given).outcome.readable() == run(LENS, given).outcome.readable()


def test_difference_shows_only_what_changed() -> None:
    assert difference(["a", "b"], ["a", "b"]).same
    changed = difference(["path:", "  x", "  y", "  z"], ["path:", "  x", "  Y", "  z"])
    assert not changed.same
    assert [(mark, text) for mark, text in changed.lines if mark in "+-"] == [("-", "  y"), ("+", "  Y")]


HELD = """journey "Held"
  trigger event "buy"
  exit on event "refund"
  quiet hours 21:00-09:00
  timezone "Asia/Shanghai"

  @first send sms "Hi {{ user.first_name }}"
"""


def test_a_message_held_by_quiet_hours_and_cancelled_by_an_exit_says_so() -> None:
    done = run(HELD, SimulationInput.of({**BUYER, "events": "+0m buy sku=L-30\n+30m refund"}))
    lines = done.outcome.readable()
    assert any("@first" in line and "cancelled before it went out: the run ended (exit rule)" in line
               for line in lines), lines
    assert lines[-1] == "  2026-06-02 09:00 @first sms: Hi 小林 (CANCELLED: cancelled: exit rule)"
