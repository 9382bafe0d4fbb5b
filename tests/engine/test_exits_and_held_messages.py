"""Exits cancel what quiet hours hold back; goals can end the run; unknown zones fall back
(issue 15, points 2, 3 and 4), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from engine.clock import VirtualClock
from engine.messages import Message, parse_message
from engine.runtime import Runtime
from storage import alerts
from storage.tables import conversions, journey_runs, outbox, step_counters, timers

T23 = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)  # inside quiet hours 22:00-08:00 UTC
MIDNIGHT = T23 + timedelta(hours=1)
EIGHT = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


def journey(steps: str, extra: str = "") -> str:
    return f'''journey "Nudge"
  trigger event "signup"
  exit on event "purchase"
  {extra or 'entry once'}
  quiet hours 22:00-08:00
  timezone "UTC"

{steps}'''


def track(event: str, at: datetime, mid: str, user: str = "u1", **props: Any) -> Message:
    return parse_message({"type": "track", "event": event, "userId": user, "properties": props,
                          "timestamp": at.isoformat(), "messageId": mid}, at)


def run(db: Engine, source: str, *messages: Message) -> Runtime:
    clock = VirtualClock(T23)
    runtime = Runtime(db, clock)
    runtime.publish(source)
    for m in messages:
        clock.move_to(m.timestamp)
        runtime.accept([m])
        runtime.process_events()
        runtime.fire_due_timers()
    return runtime


def outbox_rows(db: Engine) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.id)))


def counter(db: Engine, step: str, metric: str) -> int:
    with db.connect() as conn:
        return sum(r.count for r in conn.execute(select(step_counters).where(
            step_counters.c.step_id == step, step_counters.c.metric == metric)))


def test_an_exit_cancels_a_push_held_by_quiet_hours_while_the_run_waits(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n  @later wait 1d\n  @again send push "again"\n')
    run(db, source, track("signup", T23, "s1"), track("purchase", MIDNIGHT, "p1"))
    [row] = outbox_rows(db)
    assert row.send_at == EIGHT and row.status == "cancelled" and row.last_error == "cancelled: exit rule"
    assert counter(db, "hello", "cancelled") == 1
    with db.connect() as conn:
        assert conn.execute(select(journey_runs.c.state)).scalar_one() == "exited"
        assert conn.execute(select(timers)).all() == []


def test_an_exit_cancels_a_held_push_that_was_the_last_step(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n')
    run(db, source, track("signup", T23, "s1"), track("purchase", MIDNIGHT, "p1"))
    [row] = outbox_rows(db)
    assert row.status == "cancelled"
    with db.connect() as conn:  # the run had completed; it stays completed
        assert conn.execute(select(journey_runs.c.state)).scalar_one() == "completed"
    assert counter(db, "hello", "cancelled") == 1


def test_an_exit_in_the_same_batch_cancels_the_message_before_it_is_written(db: Engine) -> None:
    clock = VirtualClock(MIDNIGHT)
    runtime = Runtime(db, clock)
    runtime.publish(journey('  @hello send push "hello"\n'))
    runtime.accept([track("signup", T23, "s1"), track("purchase", T23 + timedelta(minutes=5), "p1")])
    runtime.process_events()
    assert [r.status for r in outbox_rows(db)] == ["cancelled"]


def test_a_message_already_due_is_not_cancelled_and_other_users_keep_theirs(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n')
    noon = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock = VirtualClock(noon)
    runtime = Runtime(db, clock)
    runtime.publish(source)
    for m in (track("signup", noon, "s1"), track("signup", T23, "s2", user="u2"), track("signup", T23, "s3", user="u3"),
              track("purchase", MIDNIGHT, "p1"), track("purchase", MIDNIGHT, "p2", user="u2")):
        clock.move_to(m.timestamp)
        runtime.accept([m])
        runtime.process_events()
    assert [r.status for r in outbox_rows(db)] == ["pending", "cancelled", "pending"]


def test_an_exit_step_keeps_what_the_run_sent_before_it(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n  exit\n')
    run(db, source, track("signup", T23, "s1"))
    assert [r.status for r in outbox_rows(db)] == ["pending"]


def test_a_goal_with_then_exit_ends_the_run_and_cancels_its_held_messages(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n  @later wait 1d\n  @again send push "again"\n',
                     'goal "signed up twice" on event "upgrade" within 7d then exit')
    run(db, source, track("signup", T23, "s1"), track("upgrade", MIDNIGHT, "g1"))
    [row] = outbox_rows(db)
    assert row.status == "cancelled" and row.last_error == "cancelled: goal signed up twice reached"
    with db.connect() as conn:
        assert conn.execute(select(journey_runs.c.state)).scalar_one() == "exited"
        assert [r.goal for r in conn.execute(select(conversions))] == ["signed up twice"]


def test_a_goal_without_then_exit_converts_and_the_run_goes_on(db: Engine) -> None:
    source = journey('  @hello send push "hello"\n  @later wait 1d\n  @again send push "again"\n',
                     'goal "signed up twice" on event "upgrade" within 7d')
    runtime = run(db, source, track("signup", T23, "s1"), track("upgrade", MIDNIGHT, "g1"))
    runtime.clock.move_to(T23 + timedelta(days=2))  # type: ignore[attr-defined]
    runtime.fire_due_timers()
    assert [(r.step_id, r.status) for r in outbox_rows(db)] == [("hello", "pending"), ("again", "pending")]
    with db.connect() as conn:
        assert [r.goal for r in conn.execute(select(conversions))] == ["signed up twice"]


def test_an_unknown_profile_zone_falls_back_to_the_journeys_then_the_installations(db: Engine) -> None:
    morning = '''journey "Morning"
  trigger event "signup"
  timezone "Asia/Shanghai"

  @ten wait until 10:00
  send push "good morning"
'''
    anywhere = morning.replace('"Morning"', '"Anywhere"').replace('  timezone "Asia/Shanghai"\n', "")
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock = VirtualClock(start)
    runtime = Runtime(db, clock, default_zone="Asia/Tokyo")
    runtime.publish(morning)
    runtime.publish(anywhere)
    identify = parse_message({"type": "identify", "userId": "u1", "traits": {"timezone": "Mars/Olympus_Mons"},
                              "timestamp": start.isoformat(), "messageId": "i1"}, start)
    again = parse_message({"type": "identify", "userId": "u1", "traits": {"timezone": "Mars/Olympus_Mons", "n": 2},
                           "timestamp": start.isoformat(), "messageId": "i2"}, start)
    runtime.accept([identify, again, track("signup", start, "s1")])
    runtime.process_events()
    with db.connect() as conn:
        due = sorted(r.due_at for r in conn.execute(select(timers)))
        found = [a for a in alerts.recent(conn) if a[1] == alerts.UNKNOWN_TIME_ZONE]
    # 10:00 in Tokyo is 01:00 UTC, in Shanghai 02:00 UTC; the next day for both.
    assert due == [datetime(2026, 6, 2, 1, 0, tzinfo=UTC), datetime(2026, 6, 2, 2, 0, tzinfo=UTC)]
    assert len(found) == 1 and "Mars/Olympus_Mons" in found[0][3]


def test_held_messages_are_found_for_users_loaded_after_the_first_question(db: Engine) -> None:
    from engine.unit_of_work import UnitOfWork

    source = journey('  @hello send push "hello"\n')
    run(db, source, track("signup", T23, "s1"), track("signup", T23, "s2", user="u2"))
    with db.connect() as conn:
        rows = {r.profile_id: r.run_id for r in conn.execute(select(outbox.c.profile_id, outbox.c.run_id))}
        first, second = sorted(rows)
        unit = UnitOfWork(conn, MIDNIGHT)
        assert unit.holding_runs(first) == [rows[first]]
        assert unit.holding_runs(second) == [rows[second]]  # loaded after the first question
