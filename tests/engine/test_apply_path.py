"""What the apply path's speed-ups (issue 18) must not change: rows written through the driver
read exactly as SQLAlchemy's would, the goal index follows runs started after it was built, and
the matcher's pre-filter skips only entries the runtime would refuse anyway."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from dsl import compile_source
from engine.clock import VirtualClock
from engine.matcher import CompiledMatcher
from engine.messages import parse_message
from engine.runtime import Runtime
from engine.scope import Scope
from engine.unit_of_work import _DRIVERS
from storage.tables import conversions, journey_runs, journeys, timers

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def track(event: str, user: str, message_id: str, at: datetime = T0, **properties: Any) -> Any:
    return parse_message({"type": "track", "event": event, "userId": user, "messageId": message_id,
                          "timestamp": at.isoformat(), "properties": properties}, at)


def test_driver_values_are_what_sqlalchemys_column_types_write() -> None:
    """On SQLite an instant is text, compared as text (`due_at <= ?`): one written in another
    format (no microseconds, an offset) would sort wrongly against SQLAlchemy's."""
    instants = [T0, T0.replace(microsecond=123), datetime(2026, 3, 8, 9, 0, tzinfo=timezone(timedelta(hours=-5))),
                datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=8))),
                datetime(812, 2, 3, 4, 5, 6, tzinfo=UTC)]
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        when: Callable[[Any], Any] | None = timers.c.due_at.type.dialect_impl(dialect).bind_processor(dialect)
        for moment in instants:
            expected = when(moment) if when is not None else moment
            assert _DRIVERS[name].when(moment) == expected, (name, moment)
        assert _DRIVERS[name].when(None) is None
    value = {"code": "LENS-1", "nested": [1, 2.5, None, "喂"]}
    serialize: Callable[[Any], Any] | None = journey_runs.c.results.type.dialect_impl(sqlite.dialect()).bind_processor(
        sqlite.dialect())
    assert serialize is not None
    assert json.loads(_DRIVERS["sqlite"].json(value)) == json.loads(serialize(value)) == value


GOAL = '''journey "Goal"
  trigger event "ping"
  entry always
  goal "bought" on event "buy" within 1d

  @w wait 2d
'''


def test_a_goal_credits_a_run_started_after_the_goal_index_was_built(db: Engine) -> None:
    """One batch: a `buy` asks the goal index first (nothing to credit), a `ping` then starts a
    run, and the next `buy` must find that run in the index without it being rebuilt."""
    runtime = Runtime(db, VirtualClock(T0))  # a run enters at the batch's `now`
    runtime.publish(GOAL)
    runtime.accept([track("buy", "u1", "m1", T0), track("ping", "u1", "m2", T0),
                    track("buy", "u1", "m3", T0 + timedelta(minutes=1)), track("buy", "u2", "m4", T0)])
    assert runtime.process_events() == 4
    with db.connect() as conn:
        assert [r.goal for r in conn.execute(select(conversions.c.goal))] == ["bought"]


class _Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, scope: Scope) -> bool:
        self.calls += 1
        return True


def test_the_matcher_skips_closed_entries_and_only_those() -> None:
    matcher = CompiledMatcher()
    matcher.load({"1": compile_source('journey "A"\n  trigger event "ping"\n  audience user.vip == true\n\n'
                                      '  @w wait 1d\n'),
                  "2": compile_source('journey "B"\n  trigger event "ping"\n\n  @w wait 1d\n')})
    scope = Scope({"vip": True, "tags": []}, T0, event={})
    assert matcher.on_event("ping", scope).enter == {"1", "2"}
    asked: list[str] = []

    def closed(key: str) -> bool:
        asked.append(key)
        return key == "1"

    assert matcher.on_event("ping", scope, closed).enter == {"2"}
    assert sorted(asked) == ["1", "2"]
    counting = _Counting()  # journey 1's trigger and audience, as one check
    rules = matcher._rules
    matcher._rules = type(rules)(rules.audiences, {"ping": type(rules.by_event["ping"])(
        enter=(("1", counting),))}, rules.enter_when, rules.exit_when, rules.goal_when)
    matcher.on_event("ping", scope, lambda key: True)
    assert counting.calls == 0, "a closed journey's checks ran"
    matcher.on_event("ping", scope, lambda key: False)
    assert counting.calls == 1


AGAIN = '''journey "Again"
  trigger event "ping"
  exit on event "ping"
  entry always

  @w wait 1d
'''

ONCE = '''journey "Once"
  trigger event "ping"
  audience count of "ping" ever >= 1
  entry once

  @w wait 1d
'''


def test_a_live_run_does_not_close_entry_always_when_the_same_event_ends_it(db: Engine) -> None:
    """`ping` both exits the run and enters again: the exit comes first, so the entry must not
    have been filtered out for the live run the user had when the event arrived."""
    runtime = Runtime(db, VirtualClock(T0 + timedelta(minutes=5)))
    runtime.publish(AGAIN)
    runtime.publish(ONCE)
    runtime.accept([track("ping", "u1", "m1", T0)])
    runtime.process_events()
    runtime.accept([track("ping", "u1", "m2", T0 + timedelta(minutes=1))])
    runtime.process_events()
    with db.connect() as conn:
        states = sorted((r.slug, r.state) for r in conn.execute(
            select(journeys.c.slug, journey_runs.c.state).join(journeys, journeys.c.id == journey_runs.c.journey_id)))
    assert states == [("again", "exited"), ("again", "waiting"), ("once", "waiting")]  # `entry once`: once
