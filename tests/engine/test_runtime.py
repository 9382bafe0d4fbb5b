"""The runtime against real databases (SQLite and PostgreSQL): events in, runs moved, outbox
rows committed, exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, cast, func, insert, select

from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime, TraceRecord, partition_lock_space
from storage import writer
from storage.replies import deliver_reply
from storage.tables import (
    conversions,
    coupon_codes,
    coupon_pools,
    events,
    identities,
    journey_runs,
    journeys,
    outbox,
    profiles,
    schedule_ticks,
    step_counters,
    timers,
)

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai

LENS = '''journey "Lens cross-sell"
  trigger event "purchase" where event.category == "care_solution"
  audience "unsubscribed" not in user.tags
  entry once every 30d
  exit on event "unsubscribe"
  goal "bought lenses" on event "purchase" where event.category == "lens" within 14d
  timezone "Asia/Shanghai"

  @settle wait 2d
  @offer issue coupon "LENS_TRIAL" as trial
  @sms send sms "Hi {{ user.first_name }}, code {{ trial.code }}"
  @look wait for event "product_viewed" where event.category == "lens" up to 3d:
    received:
      @viewed add tag "lens_curious"
    timeout:
      @nudge send push template "lens_intro"
'''


def track(event: str, user: str, at: datetime, message_id: str, **props: Any) -> Any:
    return parse_message({"type": "track", "event": event, "userId": user, "properties": props,
                          "timestamp": at.isoformat(), "messageId": message_id}, at)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def runtime(db: Engine, clock: VirtualClock) -> Runtime:
    rt = Runtime(db, clock)
    rt.publish(LENS)
    with db.begin() as conn:
        pool = conn.execute(insert(coupon_pools).values(name="LENS_TRIAL", created_at=T0)
                            .returning(coupon_pools.c.id)).scalar_one()
        conn.execute(insert(coupon_codes), [{"pool_id": pool, "code": f"L-{i}"} for i in range(3)])
    return rt


def rows(db: Engine, table: Any, *where: Any) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(select(table).where(*where)))


def settle(runtime: Runtime, clock: VirtualClock, until: datetime) -> None:
    """Process events, then fire timers in time order up to `until`."""
    runtime.process_events()
    while (due := runtime.next_timer_due()) is not None and due <= until:
        clock.move_to(due)
        runtime.fire_due_timers()
    clock.move_to(until)


def test_a_journey_end_to_end(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    assert runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")]) == 1
    settle(runtime, clock, T0)
    (run,) = rows(db, journey_runs)
    assert (run.state, run.step_id, run.wake_at) == ("waiting", "settle", T0 + timedelta(days=2))

    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    sent = {r.step_id: r for r in rows(db, outbox)}
    assert sent["offer"].payload["code"] == "L-0" and sent["offer"].status == "sent"
    assert sent["sms"].payload["results"]["trial"]["code"] == "L-0"
    assert sent["sms"].idempotency_key == f"{run.id}/sms"

    clock.move_to(T0 + timedelta(days=3))
    runtime.accept([track("product_viewed", "u1", T0 + timedelta(days=3), "m2", category="lens")])
    settle(runtime, clock, T0 + timedelta(days=10))
    (run,) = rows(db, journey_runs)
    assert run.state == "completed"
    assert "nudge" not in {r.step_id for r in rows(db, outbox)}
    (profile,) = rows(db, profiles)
    assert "lens_curious" in profile.tags
    assert rows(db, timers) == []


def test_duplicates_are_dropped_and_reentry_is_policed(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    first = track("purchase", "u1", T0, "m1", category="care_solution")
    assert runtime.accept([first, first]) == 1
    assert runtime.accept([first]) == 0
    runtime.process_events()
    runtime.accept([track("purchase", "u1", T0, "m2", category="care_solution")])
    runtime.process_events()
    assert len(rows(db, journey_runs)) == 1  # one live run at most
    settle(runtime, clock, T0 + timedelta(days=20))
    runtime.accept([track("purchase", "u1", clock.now(), "m3", category="care_solution")])
    runtime.process_events()
    assert len(rows(db, journey_runs)) == 1  # once every 30d: too soon
    clock.move_to(T0 + timedelta(days=31))
    runtime.accept([track("purchase", "u1", clock.now(), "m4", category="care_solution")])
    runtime.process_events()
    assert len(rows(db, journey_runs)) == 2


def test_exit_rule_and_goal(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    runtime.process_events()
    clock.move_to(T0 + timedelta(days=1))
    runtime.accept([track("purchase", "u1", clock.now(), "m2", category="lens")])
    runtime.accept([track("unsubscribe", "u1", clock.now(), "m3")])
    runtime.process_events()
    (run,) = rows(db, journey_runs)
    assert run.state == "exited"
    assert [c.goal for c in rows(db, conversions)] == ["bought lenses"]
    assert rows(db, timers) == []
    settle(runtime, clock, T0 + timedelta(days=5))
    assert rows(db, outbox) == []  # nothing sent after the exit


def test_pause_holds_waiting_users_and_resume_continues(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    runtime.process_events()
    runtime.set_status("lens-cross-sell", "paused")
    clock.move_to(T0 + timedelta(days=3))
    assert runtime.fire_due_timers() == 0
    runtime.accept([track("purchase", "u2", clock.now(), "m2", category="care_solution")])
    runtime.process_events()
    assert len(rows(db, journey_runs)) == 1  # no new entries while paused
    runtime.set_status("lens-cross-sell", "live")
    assert runtime.fire_due_timers() == 1
    assert {r.step_id for r in rows(db, outbox)} == {"offer", "sms"}


def test_new_version_leaves_runs_in_flight_on_theirs(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    runtime.process_events()
    v2 = runtime.publish(LENS.replace('@sms send sms "Hi', '@sms send sms "Hello'))
    runtime.accept([track("purchase", "u2", T0, "m2", category="care_solution")])
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    texts = {r.profile_id: r.payload["text"] for r in rows(db, outbox, outbox.c.channel == "sms")}
    runs = {r.profile_id: r.version_id for r in rows(db, journey_runs)}
    assert sorted(runs.values())[1] == v2
    for profile_id, version in runs.items():
        assert texts[profile_id].startswith("Hello" if version == v2 else "Hi")


def test_one_id_a_journey_started_anonymously_continues_after_sign_in(
        runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    anon = parse_message({"type": "track", "event": "purchase", "anonymousId": "anon-7", "messageId": "m1",
                          "properties": {"category": "care_solution"}, "timestamp": T0.isoformat()}, T0)
    runtime.accept([anon])
    runtime.process_events()
    login = parse_message({"type": "identify", "anonymousId": "anon-7", "userId": "u7", "messageId": "m2",
                           "traits": {"first_name": "Li", "phone": "13800000000"}}, T0)
    crm = parse_message({"type": "identify", "userId": "u7", "messageId": "m3", "traits": {"email": "li@x.cn"}}, T0)
    runtime.accept([login, crm])
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    assert len(rows(db, profiles, profiles.c.merged_into.is_(None))) == 1
    assert {(i.kind, i.value) for i in rows(db, identities)} == {
        ("anonymous_id", "anon-7"), ("user_id", "u7"), ("phone", "13800000000"), ("email", "li@x.cn")}
    (sms,) = rows(db, outbox, outbox.c.channel == "sms")
    assert sms.payload["text"].startswith("Hi {{ user.first_name }}")


def test_a_merge_never_duplicates_a_run(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    runtime.accept([
        parse_message({"type": "track", "event": "purchase", "anonymousId": "a1", "messageId": "m1",
                       "properties": {"category": "care_solution"}}, T0),
        parse_message({"type": "track", "event": "purchase", "userId": "u1", "messageId": "m2",
                       "properties": {"category": "care_solution"}}, T0),
    ])
    runtime.process_events()
    assert len(rows(db, journey_runs, journey_runs.c.state == "waiting")) == 2
    runtime.accept([parse_message({"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m3"}, T0)])
    runtime.process_events()
    live = rows(db, journey_runs, journey_runs.c.state == "waiting")
    assert len(live) == 1
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    assert len(rows(db, outbox, outbox.c.channel == "sms")) == 1


def test_two_known_customers_never_merge(runtime: Runtime, db: Engine) -> None:
    runtime.accept([parse_message({"type": "identify", "userId": "u1", "anonymousId": "shared-tablet",
                                   "messageId": "m1", "traits": {}}, T0),
                    parse_message({"type": "identify", "userId": "u2", "anonymousId": "shared-tablet",
                                   "messageId": "m2", "traits": {}}, T0)])
    assert len(rows(db, profiles, profiles.c.merged_into.is_(None))) == 2


def test_dry_coupon_pool_is_recorded_and_the_journey_moves_on(runtime: Runtime, db: Engine,
                                                              clock: VirtualClock) -> None:
    runtime.accept([track("purchase", f"u{i}", T0, f"m{i}", category="care_solution") for i in range(4)])
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    codes = [r.payload["code"] for r in rows(db, outbox, outbox.c.channel == "coupon")]
    assert sorted(codes) == ["L-0", "L-1", "L-2"]
    assert len(rows(db, outbox, outbox.c.channel == "sms")) == 4
    with db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(coupon_codes).where(
            coupon_codes.c.profile_id.is_(None))) == 0


def test_step_counters_and_traces(db: Engine, clock: VirtualClock) -> None:
    seen: list[TraceRecord] = []
    runtime = Runtime(db, clock, observer=seen.append)
    runtime.publish(LENS)
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    counts = {(r.step_id, r.metric): r.count for r in rows(db, step_counters)}
    assert counts[("__journey__", "entered")] == 1
    assert counts[("settle", "entered")] == 1
    assert counts[("look", "entered")] == 1
    assert [r.trace.kind for r in seen][:3] == ["entered", "moved", "waiting"]


def test_events_are_marked_processed_in_the_same_transaction(runtime: Runtime, db: Engine) -> None:
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    assert [e.processed_at for e in rows(db, events)] == [None]
    assert runtime.process_events() == 1
    assert runtime.process_events() == 0
    assert rows(db, events)[0].processed_at == T0


def test_after_a_merge_an_older_live_run_still_blocks_entry(db: Engine, clock: VirtualClock) -> None:
    """The absorbed profile's live run is older than the survivor's finished one: no second run."""
    runtime = Runtime(db, clock)
    runtime.publish('journey "Quick"\n  trigger event "ping"\n  entry always\n\n  @w wait 1d\n')
    runtime.publish('journey "Slow"\n  trigger event "ping"\n  entry always\n\n  @w wait 30d\n', slug="slow")
    runtime.accept([parse_message({"type": "track", "event": "ping", "anonymousId": "a", "messageId": "m1"}, T0)])
    runtime.process_events()
    clock.move_to(T0 + timedelta(hours=1))
    runtime.accept([parse_message({"type": "track", "event": "ping", "userId": "u", "messageId": "m2"}, clock.now())])
    runtime.process_events()
    settle(runtime, clock, T0 + timedelta(days=2))  # the Quick runs finish, the Slow runs wait
    runtime.accept([parse_message({"type": "alias", "userId": "u", "previousId": "a", "messageId": "m3"},
                                  clock.now())])
    runtime.accept([parse_message({"type": "track", "event": "ping", "userId": "u", "messageId": "m4"},
                                  clock.now())])
    runtime.process_events()
    (slow,) = rows(db, journeys, journeys.c.slug == "slow")
    live = rows(db, journey_runs, journey_runs.c.state == "waiting")
    # The survivor's Slow run (entered at T0) lives on behind the absorbed one's newer, now exited
    # run; the ping must not start a second one. Quick, with no live run, is entered again.
    assert sorted(r.journey_id == slow.id for r in live) == [False, True]


def test_api_trigger_enters_once_and_respects_the_audience(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish('journey "Bind invite"\n  trigger api\n  audience "member" in user.tags\n\n'
                    '  @invite send sms "bind us"\n', slug="bind")
    runtime.accept([parse_message({"type": "identify", "userId": "m1", "messageId": "i1",
                                   "traits": {"tags": ["member"]}}, T0)])
    runtime.process_events()
    assert runtime.enter("bind", [("user_id", "m1")]) is True
    assert runtime.enter("bind", [("user_id", "m1")]) is False  # entry once (the default)
    assert runtime.enter("bind", [("user_id", "stranger")]) is False  # not in the audience
    assert [r.step_id for r in rows(db, outbox)] == ["invite"]


def test_a_schedule_enters_everyone_in_the_audience(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    version = runtime.publish('journey "Birthday"\n  trigger schedule "30 9 * * *"\n'
                              '  audience user.days_until_birthday == 3\n\n  @gift send sms "happy birthday"\n')
    runtime.accept([parse_message({"type": "identify", "userId": f"u{i}", "messageId": f"i{i}",
                                   "traits": {"days_until_birthday": i % 4}}, T0) for i in range(12)])
    runtime.process_events()
    assert runtime.schedule_triggers() == [(version, "30 9 * * *")]
    assert runtime.run_schedule(version, batch=5) == 3  # u3, u7, u11, across three batches
    assert len(rows(db, outbox)) == 3


BIRTHDAY = ('journey "Birthday"\n  trigger schedule "30 9 * * *"\n  timezone "Asia/Shanghai"\n'
            '  audience user.days_until_birthday == 3\n  entry always\n\n  @gift send sms "happy birthday"\n')


def birthday_users(runtime: Runtime, count: int) -> None:
    runtime.accept([parse_message({"type": "identify", "userId": f"u{i}", "messageId": f"i{i}",
                                   "traits": {"days_until_birthday": i % 4}}, T0) for i in range(count)])
    runtime.process_events()


def test_a_missed_schedule_tick_fires_once_late_and_older_ones_are_skipped(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(BIRTHDAY)  # at noon in Shanghai: today's 09:30 has passed
    birthday_users(runtime, 8)
    assert runtime.next_schedule_due() == datetime(2026, 6, 2, 1, 30, tzinfo=UTC)  # 09:30 tomorrow, Shanghai
    clock.move_to(T0 + timedelta(days=3))  # the server was down for three days
    assert runtime.run_due_schedules() == 2  # u3 and u7, once, for the latest missed tick
    assert runtime.run_due_schedules() == 0
    with db.connect() as conn:
        ticks = list(conn.execute(select(schedule_ticks)))
    assert [(t.due_at, t.entered) for t in ticks] == [(datetime(2026, 6, 4, 1, 30, tzinfo=UTC), 2)]
    assert runtime.next_schedule_due() == datetime(2026, 6, 5, 1, 30, tzinfo=UTC)


def test_a_schedule_pass_cut_short_resumes_where_it_stopped(db: Engine, clock: VirtualClock) -> None:
    class Crash(Exception):
        pass

    def crash_after_first_batch(record: TraceRecord) -> None:
        raise Crash  # the traces of a batch are published after its transaction commits

    runtime = Runtime(db, clock, observer=crash_after_first_batch)
    runtime.publish(BIRTHDAY)
    birthday_users(runtime, 40)  # ten in the audience
    clock.move_to(datetime(2026, 6, 2, 1, 31, tzinfo=UTC))
    with pytest.raises(Crash):
        runtime.run_due_schedules(batch=8)
    first = len(rows(db, outbox))
    assert 0 < first < 10
    restarted = Runtime(db, clock)
    assert restarted.run_due_schedules(batch=8) == 10 - first
    assert restarted.run_due_schedules(batch=8) == 0
    sent_to = [r.profile_id for r in rows(db, outbox)]
    assert len(sent_to) == len(set(sent_to)) == 10  # everyone once, though entry is `always`


def test_a_webhook_reply_wakes_the_run_that_waits_for_it(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish('journey "Points"\n  trigger event "signup"\n\n'
                    '  @credit call webhook "https://points.example.com/v1/credits" as credit\n'
                    '  @thanks send sms "You have {{ credit.body.balance }} points"\n')
    runtime.accept([track("signup", "u1", T0, "m1")])
    runtime.process_events()
    (run,) = rows(db, journey_runs)
    assert (run.state, run.step_id) == ("waiting", "credit")
    clock.move_to(T0 + timedelta(seconds=3))
    with writer(db).begin() as conn:
        assert deliver_reply(conn, run.id, "credit", {"status": 200, "body": {"balance": 250}}, clock.now())
    assert runtime.fire_due_timers() == 1
    sms = rows(db, outbox, outbox.c.channel == "sms")
    assert [r.payload["results"] for r in sms] == [{"credit": {"status": 200, "body": {"balance": 250}}}]
    assert rows(db, journey_runs)[0].state == "completed"
    with writer(db).begin() as conn:  # too late: nothing waits any more
        assert not deliver_reply(conn, run.id, "credit", {"status": 200}, clock.now())


def test_a_redemption_event_marks_the_issued_code_used(runtime: Runtime, db: Engine, clock: VirtualClock) -> None:
    runtime.accept([track("purchase", "u1", T0, "m1", category="care_solution")])
    settle(runtime, clock, T0 + timedelta(days=2, hours=1))
    (issued,) = [r.payload["code"] for r in rows(db, outbox, outbox.c.channel == "coupon")]
    runtime.accept([track("coupon_redeemed", "u1", clock.now(), "m2", code=issued, pool="LENS_TRIAL"),
                    track("coupon_redeemed", "u1", clock.now(), "m3", code="NO-SUCH-CODE")])
    runtime.process_events()
    redeemed = {r.code: r.redeemed_at for r in rows(db, coupon_codes)}
    assert redeemed == {"L-0": clock.now(), "L-1": None, "L-2": None}
    assert issued == "L-0"


def test_a_partition_applies_only_its_users_events_and_has_one_consumer(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish('journey "Ping"\n  trigger event "ping"\n  entry always\n\n  @pong send sms "pong"\n')
    runtime.accept([parse_message({"type": "track", "event": "ping", "userId": f"u{i}", "messageId": f"m{i}"}, T0)
                    for i in range(10)])
    with db.connect() as conn:
        owners = {r.id for r in conn.execute(select(profiles.c.id))}
    evens = {p for p in owners if p % 2 == 0}
    if db.dialect.name == "postgresql":  # another worker holds partition 0 of 2: this one waits its turn
        with db.connect() as other, other.begin():
            other.execute(select(func.pg_try_advisory_xact_lock(partition_lock_space(), cast(2 * 65_536 + 0, Integer))))
            assert runtime.process_events(partition=(0, 2)) == 0
    assert runtime.process_events(partition=(0, 2)) == len(evens)
    assert {r.profile_id for r in rows(db, outbox)} == evens
    assert runtime.process_events(partition=(1, 2)) == len(owners) - len(evens)
    with pytest.raises(ValueError, match="partition 2 of 2"):
        runtime.process_events(partition=(2, 2))
