"""Ready scenarios read off the journey: trigger, goals, awaited events, exit rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from builder_ui.ready import Ready, ReadyEvent, reach_times, ready_scenarios, satisfying
from dsl import compile_source
from dsl import model as m

ROOT = Path(__file__).parents[2]
LENS = (ROOT / "examples/journeys/lens_care_buyers_to_lenses.journey").read_text(encoding="utf-8")


def where(text: str) -> m.Expr | None:
    trigger = compile_source(f'journey "x"\n  trigger event "e" where {text}\n\n  pass\n').triggers[0]
    assert isinstance(trigger, m.EventTrigger)
    return trigger.where


@pytest.mark.parametrize(("condition", "properties"), [
    ('event.category == "lens"', {"category": "lens"}),
    ('"lens" == event.category', {"category": "lens"}),
    ('event.category == "lens" and event.amount >= 100', {"category": "lens", "amount": 100}),
    ("event.amount > 99 and event.amount < 500", {"amount": 100}),
    ('event.channel in ["store", "app"]', {"channel": "store"}),
    ('event.a == 1 or event.b == 2', {"a": 1}),
    ('event.a != 1', {}),
    ("user.stage == \"new\"", {}),
    ("event.n <= 3", {"n": 3}),
])
def test_simple_conditions_are_satisfied(condition: str, properties: dict[str, object]) -> None:
    assert satisfying(where(condition)) == properties


def test_the_lens_journey_suggests_its_goal_its_wait_and_its_exit() -> None:
    enter = ReadyEvent(timedelta(0), "purchase", {"category": "care_solution"})
    assert ready_scenarios(compile_source(LENS)) == [
        Ready("nothing", "enters (purchase) and does nothing more", (enter,)),
        Ready("goal:bought lenses", "enters and reaches the goal “bought lenses” (purchase)",
              (enter, ReadyEvent(timedelta(days=1), "purchase", {"category": "lens"}))),
        Ready("wait:looked", "enters, then product_viewed arrives while at @looked",
              (enter, ReadyEvent(timedelta(days=2, hours=1), "product_viewed", {"category": "lens"}))),
        Ready("exit:1", "enters, then leaves on purchase (exit rule)",
              (enter, ReadyEvent(timedelta(hours=1), "purchase", {"category": "lens"}))),
    ]


def test_reach_times_count_waits_and_the_spread_of_a_wait_until() -> None:
    journey = compile_source('journey "x"\n  trigger event "e"\n\n  @a wait 2d\n  @b wait until 10:00\n'
                             '  @c wait for event "f" up to 1d:\n    received:\n      pass\n    timeout:\n'
                             '      @d send sms "late"\n')
    reach = reach_times(journey)
    assert reach["b"] == (2 * 86_400, 2 * 86_400)
    assert reach["c"] == (2 * 86_400, 3 * 86_400)
    assert reach["d"] == (3 * 86_400, 4 * 86_400)
    ready = {r.key: r for r in ready_scenarios(journey)}
    assert ready["wait:c"].events[1].after == timedelta(hours=60)  # the latest arrival misses it: halfway


def test_no_event_trigger_no_ready_scenarios() -> None:
    assert ready_scenarios(compile_source('journey "x"\n  trigger schedule "0 9 * * *"\n\n  pass\n')) == []
