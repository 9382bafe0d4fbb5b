"""Timers fired in batches: what the timer path does differently from the event path (the users'
other runs read late, coupon claims on the driver, the machine's cheaper copies) changes nothing
a batch decides, on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, event, insert, select

from engine.clock import VirtualClock
from engine.machine import Run, _replaced
from engine.messages import parse_message
from engine.runtime import Runtime
from engine.scope import Scope
from engine.unit_of_work import _summed
from storage import alerts, counters
from storage.tables import coupon_codes, coupon_pools, journey_runs, journeys, outbox, profiles, step_counters

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)

TAGGER = '''journey "Tagger"
  trigger event "join"
  entry once

  @later wait 1d
  @vip add tag "vip"
'''
WATCHER = '''journey "Watcher"
  trigger event "signup"
  entry once
  exit when "vip" in user.tags

  @long wait 5d
  @bye send push "bye"
'''
WELCOME = '''journey "VIP welcome"
  trigger when "vip" in user.tags
  entry once

  @hello send push "welcome, vip"
'''
PLAIN = '''journey "Plain"
  trigger event "visit"

  @later wait 1d
  @ping send push "ping"
'''


def message(user: str, at: datetime, message_id: str, **raw: Any) -> Any:
    return parse_message({"userId": user, "timestamp": at.isoformat(), "messageId": message_id, **raw}, at)


def track(name: str, user: str, at: datetime, message_id: str) -> Any:
    return message(user, at, message_id, type="track", event=name, properties={})


def identify(user: str, at: datetime, message_id: str, tags: list[str]) -> Any:
    return message(user, at, message_id, type="identify", traits={"tags": tags})


def runs_by(db: Engine) -> dict[tuple[str, str], str]:
    """(user id, journey slug) -> the state of that user's latest run of it."""
    with db.connect() as conn:
        found = conn.execute(select(profiles.c.first_identity, journeys.c.slug, journey_runs.c.state)
                             .join(profiles, profiles.c.id == journey_runs.c.profile_id)
                             .join(journeys, journeys.c.id == journey_runs.c.journey_id)
                             .order_by(journey_runs.c.entered_at, journey_runs.c.id)).all()
    return {(who.removeprefix("user_id:"), slug): state for who, slug, state in found}


def pushes(db: Engine) -> list[tuple[str, str]]:
    with db.connect() as conn:
        return sorted(conn.execute(select(profiles.c.first_identity, outbox.c.step_id)
                                   .join(profiles, profiles.c.id == outbox.c.profile_id)
                                   .where(outbox.c.channel == "push")).all())


def test_a_timer_that_changes_a_profile_sees_the_users_other_runs_and_entries(db: Engine) -> None:
    """One batch: u1's and u3's new tag ends their Watcher runs (read only then) and enters u1
    into a `trigger when` journey, but not u3, whose earlier entry the batch must read to refuse
    it; u5's timer changes no profile, and u5's other run stays as it was."""
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    for source in (TAGGER, WATCHER, WELCOME, PLAIN):
        runtime.publish(source)
    runtime.accept([identify("u3", T0, "i1", ["vip"])])
    runtime.process_events()
    runtime.accept([identify("u3", T0, "i2", []), track("join", "u1", T0, "j1"), track("signup", "u1", T0, "s1"),
                    track("join", "u3", T0, "j3"), track("signup", "u3", T0, "s3"),
                    track("signup", "u5", T0, "s5"), track("visit", "u5", T0, "v5")])
    runtime.process_events()
    assert runs_by(db)[("u3", "vip-welcome")] == "completed"
    clock.move_to(T0 + timedelta(days=1))
    assert runtime.fire_due_timers(100) == 3  # Tagger for u1 and u3, Plain for u5
    states = runs_by(db)
    assert states[("u1", "watcher")] == "exited" and states[("u3", "watcher")] == "exited"
    assert states[("u5", "watcher")] == "waiting"
    assert states[("u1", "vip-welcome")] == "completed" and ("u5", "vip-welcome") not in states
    assert states[("u5", "plain")] == "completed"
    assert pushes(db) == [("user_id:u1", "hello"), ("user_id:u3", "hello"), ("user_id:u5", "ping")]
    with db.connect() as conn:  # u3's second entry was refused: one run, from the first identify
        welcome = conn.execute(select(journey_runs.c.id).join(journeys, journeys.c.id == journey_runs.c.journey_id)
                               .join(profiles, profiles.c.id == journey_runs.c.profile_id)
                               .where(journeys.c.slug == "vip-welcome",
                                      profiles.c.first_identity == "user_id:u3")).all()
    assert len(welcome) == 1


def test_timers_that_change_no_profile_never_read_the_users_other_runs(db: Engine) -> None:
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    runtime.publish(PLAIN)
    runtime.publish(WATCHER)
    runtime.accept([m for i in range(5) for m in (track("visit", f"u{i}", T0, f"v{i}"),
                                                  track("signup", f"u{i}", T0, f"s{i}"))])
    runtime.process_events()
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    clock.move_to(T0 + timedelta(days=1))
    event.listen(db, "before_cursor_execute", record)
    try:
        assert runtime.fire_due_timers(100) == 5
    finally:
        event.remove(db, "before_cursor_execute", record)
    assert not [s for s in seen if "journey_runs.state IN (" in s or "max(journey_runs.entered_at)" in s]
    states = runs_by(db)
    assert all(states[(f"u{i}", "plain")] == "completed" and states[(f"u{i}", "watcher")] == "waiting"
               for i in range(5))


CAPPED = '''journey "Capped"
  trigger event "signup"
  frequency cap push 1 message per 1d

  @later wait 1h
  @which if count of "visit" ever >= 1:
    @visitor send push "welcome back"
  else:
    @newcomer send push "welcome"
'''
GREETER = '''journey "Greeter"
  trigger event "visit"

  @hi send push "hi"
'''


def test_caps_and_history_in_a_timer_batch_see_every_users_stored_rows(db: Engine) -> None:
    """A batch whose users' runs are not read still reads their messages and events, for all of
    them at the first question: u1's push an hour ago caps the timer's, u4's two days ago does
    not, u2 has none; the branch counts u1's and u4's stored visits."""
    early = T0 - timedelta(days=2)
    clock = VirtualClock(early)
    runtime = Runtime(db, clock)
    runtime.publish(CAPPED)
    runtime.publish(GREETER)
    runtime.accept([track("visit", "u4", early, "v4")])
    runtime.process_events()
    clock.move_to(T0)
    runtime.accept([track("visit", "u1", T0, "v1"), track("signup", "u1", T0, "s1"), track("signup", "u2", T0, "s2"),
                    track("signup", "u4", T0, "s4")])
    runtime.process_events()
    clock.move_to(T0 + timedelta(hours=1))
    assert runtime.fire_due_timers(100) == 3
    with db.connect() as conn:
        found = sorted(conn.execute(select(profiles.c.first_identity, outbox.c.step_id, outbox.c.status)
                                    .join(profiles, profiles.c.id == outbox.c.profile_id)).all())
    assert found == [("user_id:u1", "hi", "pending"), ("user_id:u1", "visitor", "suppressed"),
                     ("user_id:u2", "newcomer", "pending"), ("user_id:u4", "hi", "pending"),
                     ("user_id:u4", "visitor", "pending")]


COUPON = '''journey "Gift"
  trigger event "signup"

  @later wait 1d
  @gift issue coupon "GIFT" as gift
  @tell send sms "Your code: {{ gift.code }}"
'''
SECOND = '''journey "Second gift"
  trigger event "signup"

  @later wait 1d
  @again issue coupon "GIFT" as gift
'''


def codes_given(db: Engine) -> dict[str, list[tuple[str, Any]]]:
    """User id -> (step, the claimed code as the outbox row has it) of each coupon step."""
    with db.connect() as conn:
        found = conn.execute(select(profiles.c.first_identity, outbox.c.step_id, outbox.c.payload)
                             .join(profiles, profiles.c.id == outbox.c.profile_id)
                             .where(outbox.c.channel == "coupon").order_by(outbox.c.id)).all()
    given: dict[str, list[tuple[str, Any]]] = {}
    for who, step, payload in found:
        given.setdefault(who.removeprefix("user_id:"), []).append((step, payload))
    return given


@pytest.mark.parametrize("codes_per_user", ["one", "unlimited"])
def test_claims_in_one_timer_batch_give_each_person_their_own_code(db: Engine, codes_per_user: str) -> None:
    """Four people, three codes, two journeys claiming from one pool in one batch: each code goes
    to one person; in a one-per-user pool a second claim for the same person gives the same
    code back (reused), in an unlimited one it draws the next; when the pool runs dry mid-batch
    the later claims get none, the run goes on, and the pool's alert is raised once."""
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    runtime.publish(COUPON)
    expires = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    with db.begin() as conn:
        pool = conn.execute(insert(coupon_pools).values(name="GIFT", created_at=T0, codes_per_user=codes_per_user)
                            .returning(coupon_pools.c.id)).scalar_one()
        conn.execute(insert(coupon_codes), [{"pool_id": pool, "code": f"G-{i}", "expires_at": expires}
                                            for i in range(3)])
    runtime.accept([track("signup", f"u{i}", T0, f"s{i}") for i in range(2)])
    runtime.process_events()
    runtime.publish(SECOND)  # u0 and u1 in Gift only; u2 and u3 in both
    runtime.accept([track("signup", f"u{i}", T0, f"s{i}") for i in range(2, 4)])
    runtime.process_events()
    clock.move_to(T0 + timedelta(days=1))
    assert runtime.fire_due_timers(100) == 6
    given = codes_given(db)
    iso = expires.isoformat()
    claimed = {who: [(step, p["code"], p["reused"]) for step, p in steps] for who, steps in given.items()}
    assert all(p["expires_at"] == iso for steps in given.values() for _, p in steps)
    # Timers fire in (due time, timer id) order: u0, u1, u2, u3 in Gift, then u2, u3 in Second gift.
    if codes_per_user == "one":
        assert claimed == {"u0": [("gift", "G-0", False)], "u1": [("gift", "G-1", False)],
                           "u2": [("gift", "G-2", False), ("again", "G-2", True)]}
    else:
        assert claimed == {"u0": [("gift", "G-0", False)], "u1": [("gift", "G-1", False)],
                           "u2": [("gift", "G-2", False)]}
    with db.connect() as conn:
        holders = conn.execute(select(coupon_codes.c.code, profiles.c.first_identity)
                               .join(profiles, profiles.c.id == coupon_codes.c.profile_id)
                               .order_by(coupon_codes.c.code)).all()
        empty = [a for a in alerts.recent(conn) if a[1] == alerts.COUPON_POOL_EMPTY]
        texts = sorted(conn.execute(select(profiles.c.first_identity, outbox.c.payload)
                                    .join(profiles, profiles.c.id == outbox.c.profile_id)
                                    .where(outbox.c.channel == "sms")).all())
        dry = conn.execute(select(step_counters.c.count).where(step_counters.c.metric == counters.COMPLETED)).all()
    assert holders == [("G-0", "user_id:u0"), ("G-1", "user_id:u1"), ("G-2", "user_id:u2")]
    assert len(empty) == 1
    assert [who for who, _ in texts] == ["user_id:u0", "user_id:u1", "user_id:u2", "user_id:u3"]
    assert [p["results"]["gift"] for who, p in texts if who == "user_id:u3"] == [None]
    assert sum(n for (n,) in dry) == 6  # every run reached its end, with or without a code
    assert all(state == "completed" for state in runs_by(db).values())


def test_replaced_is_dataclasses_replace_for_runs_and_scopes() -> None:
    run = Run("1", "user:1", T0, "waiting", "w", T0, T0 + timedelta(days=1), {"a": 1}, {"s": "x"},
              frozenset({"g"}))
    changed: list[dict[str, Any]] = [{"state": "completed", "step": None, "waiting_since": None, "deadline": None},
                                     {"arms": {"s": "y"}}, {"results": {}}, {"converted": frozenset()}, {}]
    for changes in changed:
        copy = _replaced(run, **changes)
        assert copy == replace(run, **changes) and type(copy) is Run and copy is not run
    scope = Scope({"tags": []}, T0, event={"e": 1}, results={"r": 2})
    assert _replaced(scope, user={"tags": ["vip"]}) == replace(scope, user={"tags": ["vip"]})
    assert _replaced(scope, results={}).history is scope.history
    with pytest.raises(AttributeError):
        _replaced(run, state="exited").state = "active"  # type: ignore[misc]  # still frozen


def test_summed_is_counters_summed() -> None:
    """The flush's summing gives exactly `counters.summed`, for moments in UTC (merged before
    their hour is found) and in other zones, the two sides of a DST fold included."""
    new_york = ZoneInfo("America/New_York")
    folded = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # 05:30 UTC, then 06:30 UTC with fold=1
    rows: list[counters.CounterRow] = [
        (1, "a", "entered", T0, 1), (1, "a", "entered", T0, 1), (1, "a", "waiting", T0, 1),
        (1, "a", "waiting", T0 + timedelta(minutes=5), -1), (2, "b", "live", T0 + timedelta(hours=1), 1),
        (1, "a", "entered", T0.astimezone(new_york), 1), (3, "c", "entered", folded, 1),
        (3, "c", "entered", folded.replace(fold=1), 1), (3, "c", "entered", datetime(2026, 11, 1, 6, 0, tzinfo=UTC), 1),
    ]
    assert folded == folded.replace(fold=1)  # equal, in two different hours
    assert _summed(rows) == counters.summed(rows)
    assert _summed([]) == []
