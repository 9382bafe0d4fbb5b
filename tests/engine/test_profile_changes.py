"""Profile changes re-evaluate the conditions that read them (issue 15, point 1), on both
backends: another journey's `update`, a tag, an identify, a merge, a counted event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from engine.clock import VirtualClock
from engine.matcher import CompiledMatcher, Decisions
from engine.messages import Message, parse_message
from engine.runtime import Runtime
from engine.scope import Scope
from storage.tables import conversions, journey_runs, journeys, outbox

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)

SPEND = '''journey "Spend"
  trigger event "purchase"
  entry always

  update user.total_spend += event.amount
'''

SUPER = '''journey "Super"
  trigger when user.total_spend >= 3000
  entry once

  send sms "welcome, super user"
'''


def message(kind: str, user: str, at: datetime, mid: str, **fields: Any) -> Message:
    raw: dict[str, Any] = {"type": kind, "userId": user, "timestamp": at.isoformat(), "messageId": mid, **fields}
    return parse_message(raw, at)


def purchase(user: str, at: datetime, mid: str, amount: float) -> Message:
    return message("track", user, at, mid, event="purchase", properties={"amount": amount})


class CountingMatcher(CompiledMatcher):
    """The compiled matcher, counting how often profile conditions are evaluated."""

    def __init__(self) -> None:
        super().__init__()
        self.profile_checks = 0

    def on_profile_change(self, scope: Scope) -> Decisions:
        self.profile_checks += 1
        return super().on_profile_change(scope)


def make(db: Engine, *sources: str, matcher: CompiledMatcher | None = None) -> tuple[Runtime, VirtualClock]:
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock, matcher=matcher)
    for source in sources:
        runtime.publish(source)
    return runtime, clock


def runs_of(db: Engine, slug: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(journey_runs).join(journeys, journeys.c.id == journey_runs.c.journey_id)
                                 .where(journeys.c.slug == slug).order_by(journey_runs.c.id)))


def sends(db: Engine, step_prefix: str = "") -> list[Any]:
    with db.connect() as conn:
        return [r for r in conn.execute(select(outbox).order_by(outbox.c.id)) if r.step_id.startswith(step_prefix)]


def feed(runtime: Runtime, clock: VirtualClock, messages: list[Message]) -> None:
    for m in messages:
        clock.move_to(m.timestamp)
        runtime.accept([m])
        runtime.process_events()


def test_another_journeys_update_crosses_a_spend_threshold_once(db: Engine) -> None:
    runtime, clock = make(db, SPEND, SUPER)
    feed(runtime, clock, [purchase("u1", T0, "p1", 1000), purchase("u1", T0 + timedelta(hours=1), "p2", 1500)])
    assert runs_of(db, "super") == []
    feed(runtime, clock, [purchase("u1", T0 + timedelta(hours=2), "p3", 600),
                          purchase("u1", T0 + timedelta(hours=3), "p4", 900)])
    entered = runs_of(db, "super")
    assert len(entered) == 1 and entered[0].entered_at == T0 + timedelta(hours=2)
    assert [r.payload["text"] for r in sends(db)] == ["welcome, super user"]


def test_the_threshold_is_crossed_in_the_same_transaction_as_the_update(db: Engine) -> None:
    """Two purchases in one batch: the second crosses; the entry is made by that batch."""
    runtime, clock = make(db, SPEND, SUPER)
    clock.move_to(T0 + timedelta(minutes=1))
    runtime.accept([purchase("u1", T0, "p1", 2000), purchase("u1", T0 + timedelta(seconds=1), "p2", 1000)])
    assert runtime.process_events() == 2
    assert len(runs_of(db, "super")) == 1


def test_an_update_no_condition_reads_costs_no_evaluation(db: Engine) -> None:
    other = SPEND.replace('"Spend"', '"Orders"').replace("user.total_spend += event.amount",
                                                         "user.last_order = event.amount")
    matcher = CountingMatcher()
    runtime, clock = make(db, other, SUPER, matcher=matcher)
    feed(runtime, clock, [purchase("u1", T0, "p1", 5000)])
    assert matcher.profile_checks == 0
    feed(runtime, clock, [message("identify", "u1", T0 + timedelta(minutes=1), "i1", traits={"total_spend": 10})])
    assert matcher.profile_checks == 2  # before and after the change of a field SUPER reads


def test_a_counted_event_makes_a_history_condition_true_on_the_third(db: Engine) -> None:
    third = '''journey "Third"
  trigger when count of "purchase" within 365d >= 3
  entry once

  send sms "three orders"
'''
    runtime, clock = make(db, third)
    feed(runtime, clock, [purchase("u1", T0 + timedelta(days=i), f"p{i}", 10) for i in range(2)])
    assert runs_of(db, "third") == []
    feed(runtime, clock, [purchase("u1", T0 + timedelta(days=2), "p2", 10),
                          purchase("u1", T0 + timedelta(days=3), "p3", 10)])
    assert [r.entered_at for r in runs_of(db, "third")] == [T0 + timedelta(days=2)]


def test_journeys_that_retrigger_each_other_stop_after_one_pass_each(db: Engine) -> None:
    on = '''journey "On"
  trigger when user.flag == true
  entry always

  update user.flag = false
  send sms "on"
'''
    off = '''journey "Off"
  trigger when user.flag == false
  entry always

  update user.flag = true
  send sms "off"
'''
    runtime, clock = make(db, on, off)
    feed(runtime, clock, [message("identify", "u1", T0, "i1", traits={"flag": True})])
    assert [r.payload["text"] for r in sends(db)] == ["on", "off"]
    assert len(runs_of(db, "on")) == 1 and len(runs_of(db, "off")) == 1
    # The next input is a new pass: the chain goes round once more, and stops again.
    feed(runtime, clock, [message("identify", "u1", T0 + timedelta(hours=1), "i2", traits={"flag": False})])
    assert [r.payload["text"] for r in sends(db)] == ["on", "off", "off", "on"]


def test_a_tag_added_by_one_journey_exits_a_run_of_another(db: Engine) -> None:
    nurture = '''journey "Nurture"
  trigger event "signup"
  exit when "vip" in user.tags

  wait 3d
  send sms "still there?"
'''
    vip = '''journey "Vip"
  trigger event "purchase" where event.amount >= 1000

  add tag "vip"
'''
    runtime, clock = make(db, nurture, vip)
    feed(runtime, clock, [message("track", "u1", T0, "s1", event="signup"), purchase("u1", T0 + timedelta(hours=1),
                                                                                      "p1", 1200)])
    assert [r.state for r in runs_of(db, "nurture")] == ["exited"]


def test_a_goal_reached_through_an_update_converts_the_run(db: Engine) -> None:
    nudge = '''journey "Nudge"
  trigger event "signup"
  goal "spent 100" when user.total_spend >= 100 within 7d

  wait 3d
  send sms "come back"
'''
    runtime, clock = make(db, nudge, SPEND)
    feed(runtime, clock, [message("track", "u1", T0, "s1", event="signup"),
                          purchase("u1", T0 + timedelta(hours=1), "p1", 150)])
    with db.connect() as conn:
        assert [r.goal for r in conn.execute(select(conversions))] == ["spent 100"]


def test_a_merge_that_brings_a_trait_fires_a_condition_trigger_once(db: Engine) -> None:
    gold = '''journey "Gold welcome"
  trigger when user.tier == "gold"
  entry once

  send sms "hello gold"
'''
    runtime, clock = make(db)
    feed(runtime, clock, [message("identify", "m1", T0, "i0", traits={"first_name": "Li"})])  # the older profile
    feed(runtime, clock, [parse_message({"type": "identify", "anonymousId": "a1", "traits": {"tier": "gold"},
                                         "timestamp": (T0 + timedelta(hours=1)).isoformat(), "messageId": "i1"},
                                        T0 + timedelta(hours=1))])
    runtime.publish(gold)  # after the anonymous profile became gold: it has not entered
    sign_in = parse_message({"type": "identify", "userId": "m1", "anonymousId": "a1",
                             "timestamp": (T0 + timedelta(hours=2)).isoformat(), "messageId": "i2"},
                            T0 + timedelta(hours=2))
    feed(runtime, clock, [sign_in])
    assert [r.payload["text"] for r in sends(db)] == ["hello gold"]  # the member became gold by the merge
    feed(runtime, clock, [message("identify", "m1", T0 + timedelta(hours=3), "i3", traits={"tier": "gold"})])
    assert len(runs_of(db, "gold-welcome")) == 1
