"""Page, screen and group calls in journeys, on both backends: pages and screens are events a
journey triggers on, waits for and counts; a group call changes the profile like an identify."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime
from storage.tables import conversions, journey_runs, outbox, profiles

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)

BROWSED = '''journey "Pricing visitors"
  trigger event "Viewed Pricing Page" where event.path == "/pricing"
  audience count of "Viewed Pricing Page" ever >= 2
  goal "signed up" on event "Viewed Welcome Screen" within 7d

  @ask wait for event "Viewed Checkout Screen" up to 1d:
    received:
      @thanks send push "Welcome to checkout"
    timeout:
      @nudge send push "Still deciding?"
'''

STORES = '''journey "Store members"
  trigger when "store-0571" in user.groups and user.group.city == "杭州"

  @hello send push "欢迎 {{ user.group.name }} 的会员"
'''


def message(kind: str, at: datetime, message_id: str, **fields: Any) -> Any:
    return parse_message({"type": kind, "userId": "u1", "timestamp": at.isoformat(), "messageId": message_id,
                          **fields}, at)


def test_pages_and_screens_trigger_wait_and_count(db: Engine) -> None:
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    runtime.publish(BROWSED)
    runtime.accept([message("page", T0, "p1", name="Pricing", properties={"path": "/pricing"})])
    runtime.process_events()
    with db.connect() as conn:  # the audience counts the page itself: one view is not enough
        assert conn.execute(select(journey_runs)).all() == []
    clock.move_to(T0 + timedelta(hours=1))
    runtime.accept([message("page", clock.now(), "p2", name="Pricing", properties={"path": "/pricing"})])
    runtime.process_events()
    clock.move_to(T0 + timedelta(hours=2))
    runtime.accept([message("screen", clock.now(), "s1", name="Checkout")])
    runtime.process_events()
    clock.move_to(T0 + timedelta(hours=3))
    runtime.accept([message("screen", clock.now(), "s2", name="Welcome")])
    runtime.process_events()
    with db.connect() as conn:
        (run,) = conn.execute(select(journey_runs)).all()
        sent = conn.execute(select(outbox.c.step_id)).scalars().all()
        goals = conn.execute(select(conversions.c.goal)).scalars().all()
    assert run.state == "completed"
    assert sent == ["thanks"]  # the screen view answered the wait
    assert goals == ["signed up"]


def test_a_group_call_puts_the_group_on_the_profile(db: Engine) -> None:
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    runtime.publish(STORES)
    runtime.accept([message("group", T0, "g1", groupId="store-0571", traits={"name": "西湖店"})])
    runtime.process_events()
    with db.connect() as conn:
        assert conn.execute(select(outbox)).all() == []  # no city yet: the condition does not hold
    runtime.accept([message("group", T0, "g2", groupId="store-0571", traits={"city": "杭州"})])
    runtime.process_events()
    with db.connect() as conn:
        (profile,) = conn.execute(select(profiles)).all()
        sent = conn.execute(select(outbox.c.step_id, outbox.c.payload)).all()
    assert profile.traits["groups"] == ["store-0571"]
    assert profile.traits["group"] == {"id": "store-0571", "name": "西湖店", "city": "杭州"}  # merged: same group
    assert [s.step_id for s in sent] == ["hello"]

    runtime.accept([message("group", T0, "g3", groupId="hq", traits={"city": "上海"}),
                    message("group", T0, "g4", groupId="store-0571", traits={})])
    runtime.process_events()
    with db.connect() as conn:
        (profile,) = conn.execute(select(profiles)).all()
    assert profile.traits["groups"] == ["store-0571", "hq"]  # every group, once, in the order joined
    assert profile.traits["group"] == {"id": "store-0571"}  # the latest call's group, as that call described it
