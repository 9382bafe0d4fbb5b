"""The transition function: one table or scenario per rule of issue 3, then properties over
every example journey."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsl import compile_source
from dsl.model import Entry
from engine.machine import (
    WEBHOOK_REPLY_TIMEOUT,
    CancelTimers,
    Conversion,
    EventArrived,
    ExitRequested,
    GoalReached,
    Input,
    Outbound,
    ProfileUpdate,
    Program,
    Run,
    ScheduleTimer,
    Start,
    TagUpdate,
    TimerDue,
    Trace,
    advance,
    may_enter,
)
from engine.scope import Scope

EXAMPLES = sorted((Path(__file__).parents[2] / "examples/journeys").glob("*.journey"))
T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


class MemoryPorts:
    """The two questions a transition asks of its transaction, answered from lists."""

    def __init__(self, codes: list[str] | None = None, sent: list[tuple[str, datetime]] | None = None) -> None:
        self.codes = list(codes or [])
        self.claimed: dict[str, str] = {}
        self.sent = list(sent or [])

    def sent_count(self, channel: str | None, since: datetime) -> int:
        return sum(1 for c, at in self.sent if at >= since and channel in (None, c))

    def claim_coupon(self, pool: str, key: str) -> Mapping[str, Any] | None:
        if key not in self.claimed:
            if not self.codes:
                return None
            self.claimed[key] = self.codes.pop(0)
        return {"code": self.claimed[key]}


def program(body: str, settings_text: str = '  trigger event "purchase"\n') -> Program:
    return Program("j1", compile_source(f'journey "t"\n{settings_text}\n{body}'))


def start(prog: Program, user: Mapping[str, Any] | None = None, now: datetime = T0,
          ports: MemoryPorts | None = None) -> tuple[Run, list[Any]]:
    run = Run("r1", "u1", now)
    return advance(prog, run, Start(), Scope(user or {}, now), ports or MemoryPorts())


def step(prog: Program, run: Run, given_input: Input, now: datetime, user: Mapping[str, Any] | None = None,
         ports: MemoryPorts | None = None) -> tuple[Run, list[Any]]:
    return advance(prog, run, given_input, Scope(user or {}, now), ports or MemoryPorts())


def outbound(effects: list[Any]) -> list[Outbound]:
    return [e for e in effects if isinstance(e, Outbound)]


def test_start_runs_instant_steps_then_waits() -> None:
    prog = program('  @hello send sms "hi"\n  @pause wait 2d\n  @bye send sms "bye"\n')
    run, effects = start(prog)
    assert [o.step for o in outbound(effects)] == ["hello"]
    assert ScheduleTimer("pause", T0 + timedelta(days=2)) in effects
    assert (run.state, run.step, run.deadline) == ("waiting", "pause", T0 + timedelta(days=2))

    later = T0 + timedelta(days=2)
    run, effects = step(prog, run, TimerDue("pause"), later)
    assert [o.step for o in outbound(effects)] == ["bye"]
    assert run.state == "completed"


def test_branches_see_updates_made_earlier_in_the_same_call() -> None:
    prog = program('  update user.points += 50\n  add tag "vip"\n'
                   '  if user.points >= 100 and "vip" in user.tags:\n    @rich send sms "rich"\n'
                   '  else:\n    @poor send sms "poor"\n')
    _, effects = start(prog, {"points": 60})
    assert ProfileUpdate(("points",), "+=", 50) in effects
    assert TagUpdate("add", "vip") in effects
    assert [o.step for o in outbound(effects)] == ["rich"]
    _, effects = start(prog, {"points": 10})
    assert [o.step for o in outbound(effects)] == ["poor"]


def test_wait_for_event_received_timeout_and_the_tie() -> None:
    prog = program('  @w wait for event "purchase" up to 1d:\n    received:\n      @yes send sms "thanks"\n'
                   '    timeout:\n      @no send sms "reminder"\n')
    run, _ = start(prog)
    deadline = T0 + timedelta(days=1)

    _, effects = step(prog, run, EventArrived("w", deadline), deadline)  # same instant: received wins
    assert [o.step for o in outbound(effects)] == ["yes"]
    assert CancelTimers() in effects

    timed_out, effects = step(prog, run, TimerDue("w"), deadline)
    assert [o.step for o in outbound(effects)] == ["no"]

    # after the timeout the event is ignored; and a late event from before the wait began too
    _, effects = step(prog, timed_out, EventArrived("w", deadline), deadline)
    assert outbound(effects) == []
    _, effects = step(prog, run, EventArrived("w", T0 - timedelta(minutes=1)), T0 + timedelta(hours=1))
    assert outbound(effects) == [] and effects[-1].kind == "ignored"
    _, effects = step(prog, run, EventArrived("w", deadline + timedelta(seconds=1)), deadline)
    assert outbound(effects) == []


def test_a_replayed_timer_or_event_is_harmless() -> None:
    prog = program('  @a wait 1h\n  @m send sms "once"\n  @b wait 1h\n')
    run, _ = start(prog)
    moved, effects = step(prog, run, TimerDue("a"), T0 + timedelta(hours=1))
    assert [o.key for o in outbound(effects)] == ["r1/m"]
    again, effects = step(prog, moved, TimerDue("a"), T0 + timedelta(hours=1))
    assert again == moved
    assert outbound(effects) == [] and effects == [Trace("ignored", "a", "timer for a step the run is not waiting at")]


def test_split_is_deterministic_and_recorded_and_control_messages_nobody() -> None:
    prog = program('  @ab split "offer":\n    50%:\n      @a send sms "A"\n    40%:\n      @b send sms "B"\n'
                   '    10% control:\n      pass\n')
    arms = {}
    for i in range(300):
        run, effects = advance(prog, Run(f"r{i}", f"user-{i}", T0), Start(), Scope({}, T0), MemoryPorts())
        again, _ = advance(prog, Run(f"r{i}", f"user-{i}", T0), Start(), Scope({}, T0), MemoryPorts())
        assert run.arms == again.arms
        arm = run.arms["ab"]
        arms[arm] = arms.get(arm, 0) + 1
        if arm == "ab.control":
            assert outbound(effects) == []
            assert Trace("split", "ab", "ab.control (control)") in effects
    assert set(arms) == {"ab.a", "ab.b", "ab.control"}


def test_quiet_hours_defer_in_the_users_zone() -> None:
    prog = program('  @m send sms "hi"\n', '  trigger event "purchase"\n  quiet hours 21:00-09:00\n'
                   '  timezone "Asia/Shanghai"\n')
    late = datetime(2026, 6, 1, 22, 30, tzinfo=UTC)  # 06:30 in Shanghai: quiet
    _, effects = start(prog, now=late)
    assert outbound(effects)[0].send_at == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    # the user's own zone wins over the journey's default: 22:30 UTC is 18:30 in New York
    _, effects = start(prog, {"timezone": "America/New_York"}, now=late)
    assert outbound(effects)[0].send_at == late


def test_frequency_caps_suppress_record_and_move_on() -> None:
    prog = program('  @one send sms "1"\n  @two send sms "2"\n  @push send push "3"\n  @after add tag "done"\n',
                   '  trigger event "purchase"\n  frequency cap sms 1 message per 1d\n')
    _, effects = start(prog)
    statuses = {o.step: o.status for o in outbound(effects)}
    assert statuses == {"one": "pending", "two": "suppressed", "push": "pending"}  # counted within the call
    assert TagUpdate("add", "done") in effects
    # earlier sends from other journeys count too
    ports = MemoryPorts(sent=[("sms", T0 - timedelta(hours=2))])
    _, effects = start(prog, ports=ports)
    assert outbound(effects)[0].status == "suppressed"
    assert "frequency cap" in (outbound(effects)[0].reason or "")


def test_coupons_name_their_result_and_a_dry_pool_is_recorded() -> None:
    prog = program('  @c issue coupon "TRIAL" as trial\n  if trial:\n    @code send sms "{{ trial.code }}"\n'
                   '  else:\n    @sorry send sms "sold out"\n')
    run, effects = start(prog, ports=MemoryPorts(codes=["ABC-1"]))
    assert run.results == {"trial": {"code": "ABC-1"}}
    sent = {o.step: o for o in outbound(effects)}
    assert sent["c"].payload == {"pool": "TRIAL", "code": "ABC-1"}
    assert sent["code"].payload["results"] == {"trial": {"code": "ABC-1"}}

    run, effects = start(prog, ports=MemoryPorts(codes=[]))
    assert run.results == {"trial": None}
    assert [o.step for o in outbound(effects)] == ["sorry"]
    assert Trace("coupon_empty", "c", "pool TRIAL is empty") in effects


def test_webhook_body_is_evaluated_with_the_scope() -> None:
    prog = program('  @hook call webhook "https://crm.example.com/points" with {"id": user.id, "pts": 10 * 2}\n')
    _, effects = start(prog, {"id": "u-9"})
    assert outbound(effects)[0].payload == {"url": "https://crm.example.com/points", "body": {"id": "u-9", "pts": 20},
                                            "await_reply": False}


def test_a_webhook_named_result_waits_for_the_reply_or_times_out() -> None:
    prog = program('  @crm call webhook "https://crm.example.com/v1" as crm\n  @m send sms "{{ crm.status }}"\n')
    run, effects = start(prog)
    assert (run.state, run.step) == ("waiting", "crm")
    assert outbound(effects)[0].payload["await_reply"] is True
    assert ScheduleTimer("crm", T0 + WEBHOOK_REPLY_TIMEOUT) in effects
    replied, effects = step(prog, run, TimerDue("crm", {"status": 201, "body": {"id": 7}}), T0 + timedelta(seconds=2))
    assert replied.results == {"crm": {"status": 201, "body": {"id": 7}}}
    assert [o.step for o in outbound(effects)] == ["m"]
    timed_out, _ = step(prog, run, TimerDue("crm"), T0 + WEBHOOK_REPLY_TIMEOUT)
    assert timed_out.results == {"crm": {"status": "timeout"}}


def test_exits_end_the_run_wherever_it_is() -> None:
    prog = program('  @w wait 7d\n  @m send sms "x"\n')
    run, _ = start(prog)
    run, effects = step(prog, run, ExitRequested("exit on purchase"), T0 + timedelta(days=1))
    assert (run.state, run.step) == ("exited", "w")
    assert CancelTimers() in effects
    _, effects = step(prog, run, TimerDue("w"), T0 + timedelta(days=7))
    assert outbound(effects) == []
    prog = program('  @m send sms "x"\n  @stop exit\n')
    run, _ = start(prog)
    assert (run.state, run.step) == ("exited", "stop")


def test_goals_convert_once_within_their_window() -> None:
    prog = program('  wait 30d\n', '  trigger event "purchase"\n  goal "bought" on event "purchase" within 14d\n')
    run, _ = start(prog)
    converted, effects = step(prog, run, GoalReached("bought", T0 + timedelta(days=3)), T0 + timedelta(days=3))
    assert Conversion("bought", T0 + timedelta(days=3)) in effects
    assert converted.converted == {"bought"}
    _, effects = step(prog, converted, GoalReached("bought", T0 + timedelta(days=4)), T0 + timedelta(days=4))
    assert not [e for e in effects if isinstance(e, Conversion)]
    _, effects = step(prog, run, GoalReached("bought", T0 + timedelta(days=15)), T0 + timedelta(days=15))
    assert not [e for e in effects if isinstance(e, Conversion)]


@pytest.mark.parametrize(
    ("policy", "last", "live", "expected"),
    [
        (Entry("once"), None, False, True),
        (Entry("once"), T0 - timedelta(days=400), False, False),
        (Entry("always"), T0 - timedelta(minutes=1), False, True),
        (Entry("always"), T0 - timedelta(minutes=1), True, False),  # never two live runs
        (Entry("once_every", 30 * 86400), T0 - timedelta(days=29), False, False),
        (Entry("once_every", 30 * 86400), T0 - timedelta(days=30), False, True),
        (Entry("once_every", 30 * 86400), None, True, False),
    ],
)
def test_may_enter(policy: Entry, last: datetime | None, live: bool, expected: bool) -> None:
    assert may_enter(policy, last, live, T0) is expected


# --------------------------------------------------------------------------- properties

PROGRAMS = [Program(p.stem, compile_source(p.read_text(encoding="utf-8"))) for p in EXAMPLES]
users = st.fixed_dictionaries({}, optional={
    "points": st.integers(-5, 5000), "total_spend": st.integers(0, 10_000), "tags": st.lists(st.sampled_from(
        ["vip", "member", "unsubscribed", "super_user", "bound"]), max_size=3),
    "timezone": st.sampled_from(["Asia/Shanghai", "Europe/Paris", "bogus/zone"]),
    "push_token": st.sampled_from(["tok", None]), "first_name": st.text(max_size=5),
})
moves = st.lists(st.tuples(st.sampled_from(["timer", "event", "late_event", "exit", "goal"]),
                           st.integers(0, 20 * 86400)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PROGRAMS), users, moves, st.integers(0, 3))
def test_invariants_over_random_inputs(prog: Program, user: dict[str, Any], plan: list[tuple[str, int]],
                                       codes: int) -> None:
    ports = MemoryPorts(codes=[f"C{i}" for i in range(codes)])
    now = T0
    run, effects = advance(prog, Run("r", "u", now), Start(), Scope(user, now), ports)
    keys = [o.key for o in outbound(effects)]
    for kind, seconds in plan:
        now += timedelta(seconds=seconds)
        before = run
        given_input: Input
        if kind == "timer":
            given_input = TimerDue(run.step or "nowhere")
            now = max(now, run.deadline or now)
        elif kind in ("event", "late_event"):
            given_input = EventArrived(run.step or "nowhere", now if kind == "event" else T0 - timedelta(days=1))
        elif kind == "exit":
            given_input = ExitRequested("test")
        else:
            given_input = GoalReached(next(iter(prog.goals), "none"), now)
        run, effects = advance(prog, run, given_input, Scope(user, now), ports)
        keys += [o.key for o in outbound(effects)]
        if not before.live:
            assert run.state == before.state and not outbound(effects)
        assert (run.state == "waiting") == (run.deadline is not None)
        assert run.state != "active"  # every call ends waiting or finished
    assert len(keys) == len(set(keys)), "an outbound key was produced twice"


def test_a_calendar_wait_ends_at_the_same_local_time_across_dst_and_a_timed_one_after_the_hours() -> None:
    """`wait 1 day` from 09:00 on the eve of New York's spring-forward ends at 09:00 (23 hours
    later); `wait 24h` ends at 10:00 local."""
    saturday_nine = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # 09:00 EST
    user = {"timezone": "America/New_York"}
    for body, expected in (("  wait 1 day\n  send sms \"x\"\n", datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
                           ("  wait 24h\n  send sms \"x\"\n", datetime(2026, 3, 8, 14, 0, tzinfo=UTC))):
        _, effects = start(program(body), user, saturday_nine)
        [timer] = [e for e in effects if isinstance(e, ScheduleTimer)]
        assert timer.due_at == expected, body


def test_an_unknown_user_zone_falls_back_to_the_journeys_then_the_installations() -> None:
    body = "  wait until 10:00\n  send sms \"x\"\n"
    mars = {"timezone": "Mars/Olympus_Mons"}
    with_zone = program(body, '  trigger event "purchase"\n  timezone "Asia/Shanghai"\n')
    _, effects = start(with_zone, mars)
    assert [e.due_at for e in effects if isinstance(e, ScheduleTimer)] == [datetime(2026, 6, 2, 2, 0, tzinfo=UTC)]
    bare = Program("j1", compile_source(f'journey "t"\n  trigger event "purchase"\n\n{body}'), "Asia/Tokyo")
    _, effects = start(bare, mars)
    assert [e.due_at for e in effects if isinstance(e, ScheduleTimer)] == [datetime(2026, 6, 2, 1, 0, tzinfo=UTC)]


def test_exits_and_goal_exits_cancel_held_messages_but_an_exit_step_does_not() -> None:
    from engine.machine import CancelDeferred

    prog = program("  @hello send sms \"x\"\n  wait 1d\n  send sms \"y\"\n",
                   '  trigger event "purchase"\n  goal "g" on event "upgrade" within 7d then exit\n')
    run, _ = start(prog)
    after, effects = step(prog, run, ExitRequested("exit rule"), T0 + timedelta(hours=1))
    assert after.state == "exited" and CancelDeferred("exit rule") in effects
    done = Run("r1", "u1", T0, state="completed")
    after, effects = step(prog, done, ExitRequested("exit rule"), T0 + timedelta(hours=1))
    assert after.state == "completed" and effects == [CancelDeferred("exit rule")]
    after, effects = step(prog, run, GoalReached("g", T0 + timedelta(hours=1)), T0 + timedelta(hours=1))
    assert after.state == "exited" and Conversion("g", T0 + timedelta(hours=1)) in effects
    assert CancelDeferred("goal g reached") in effects
    _, effects = start(program("  send sms \"x\"\n  exit\n"))
    assert not any(isinstance(e, CancelDeferred) for e in effects)
