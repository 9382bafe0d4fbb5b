"""`DurableMatcher`: the conformance suite, a differential test against `CompiledMatcher`, and
the guards around durable-rules (sessions, one ruleset per version, actions, crashes, threads).
Its compile-time limits are in test_durable_limits.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from engine.durable import DurableMatcher
from engine.durable.child import ActionFailed, RulesHost
from engine.durable.translate import translate
from engine.matcher import CompiledMatcher, Decisions

from .matcher_conformance import *  # noqa: F403
from .matcher_conformance import DAY, NOW, ListHistory, MatcherFactory, StoredEvent, journey, scope


@pytest.fixture
def matcher_factory() -> Iterator[MatcherFactory]:
    made: list[DurableMatcher] = []

    def factory() -> DurableMatcher:
        made.append(DurableMatcher())
        return made[-1]

    yield factory
    for matcher in made:
        matcher.close()


@pytest.fixture
def durable() -> Iterator[DurableMatcher]:
    with DurableMatcher() as matcher:
        yield matcher


@pytest.fixture(scope="module")
def shared() -> Iterator[DurableMatcher]:
    """One matcher (and child) for all of hypothesis' examples: reloading it is part of the test."""
    with DurableMatcher() as matcher:
        yield matcher


# --------------------------------------------------------------------------- differential

# A small world, so that values often meet the literals they are compared with.
PATHS = ["event.a", "event.a.b", "user.x", "user.tags"]
LITERALS = ['"a"', '"a!"', '"a b"', '""', '"é"', r'"a\"b"', "1", "5", "2.5", "9007199254740993", "1e-05", "true",
            "false", "null"]
OPERATORS = ["==", "!=", "<", "<=", ">", ">="]
EVENTS = ["e1", "e2", "e3"]  # journeys mention e1 and e2; e3 concerns only `exit when` and `when` goals
# Values near the literals, where durable-rules' own comparisons differ from ours: text that is
# a prefix of a literal, bools against numbers, numbers beyond 2**53, numbers as text...
NEAR_TEXT = ["a", "a!", "a b", "", "é", 'a"b', "5"]
NEAR_NUMBERS = [1, 5, 5.0, 2.5, -5, 2**53 + 1, 9007199254740992.0, 1e-05]
FAR = ["a ", "a\\b", "x\ny", "true", "z" * 1200, -1, -2.5, 1e20, -0.0, float("nan")]

literals = st.sampled_from(LITERALS) | st.sampled_from(["1", "5", "2.5", "1e-05", "9007199254740993"]).map("-{}".format)


def conditions_on(paths: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Random conditions over these paths, mostly `and`s of comparisons with literals (what
    durable-rules decides), with what it cannot decide mixed in."""
    comparisons = st.one_of(st.builds("{} {} {}".format, paths, st.sampled_from(OPERATORS), literals),
                            st.builds("{} {} {}".format, literals, st.sampled_from(OPERATORS), paths))
    others = st.one_of(
        st.builds("{} == {}".format, paths, paths),
        st.builds("{} in [{}, \"lens\"]".format, paths, literals),
        st.builds("{} in {}".format, literals, paths),
        st.builds("exists({})".format, paths),
        st.builds('lower({}) == "lens"'.format, paths),
        st.builds("{} * 2 > 5".format, paths),
        st.sampled_from(['count of "purchase" ever >= 1',
                         'count of "purchase" where event.a == "lens" within 30d == 0']),
    )
    nested = st.recursive(others | comparisons, lambda inner: st.one_of(
        st.builds("not ({})".format, inner), st.builds("({} or {})".format, inner, inner)), max_leaves=4)
    return st.lists(st.one_of(comparisons, comparisons, comparisons, nested), min_size=1, max_size=3).map(" and ".join)


conditions = conditions_on(st.sampled_from(PATHS))  # where an event is in scope
user_conditions = conditions_on(st.sampled_from([p for p in PATHS if p.startswith("user.")]))
wheres = st.none() | conditions
events = st.sampled_from(EVENTS[:2])


def _where(condition: str | None) -> str:
    return "" if condition is None else f" where {condition}"


settings_lines = st.one_of(
    st.builds(lambda e, c: f'trigger event "{e}"{_where(c)}', events, wheres),
    st.builds("trigger when {}".format, user_conditions),
    st.builds(lambda e, c: f'exit on event "{e}"{_where(c)}', events, wheres),
    st.builds("exit when {}".format, user_conditions),
    st.builds(lambda e, c: f'goal "?" on event "{e}"{_where(c)} within 7d', events, wheres),
    st.builds('goal "?" when {} within 7d'.format, user_conditions),
)


@st.composite
def journeys(draw: st.DrawFn) -> dsl.CompiledJourney:
    lines = [draw(st.builds(lambda e, c: f'trigger event "{e}"{_where(c)}', events, wheres))]
    lines += [line.replace('goal "?"', f'goal "g{i}"') for i, line in enumerate(draw(st.lists(settings_lines,
                                                                                            max_size=4)))]
    audience = draw(st.none() | user_conditions)
    if audience is not None:
        lines.append(f"audience {audience}")
    steps = "  pass"
    if draw(st.booleans()):
        steps = (f'  @w wait for event "{draw(events)}"{_where(draw(wheres))} up to 1d:\n'
                 "    received:\n      pass\n    timeout:\n      pass")
    return journey(*lines, steps=steps)  # the strategy writes only valid journeys


scalars = st.one_of(st.sampled_from(NEAR_TEXT), st.sampled_from(NEAR_NUMBERS), st.booleans(), st.none(),
                    st.sampled_from(FAR), st.integers(-10, 10), st.floats(-10, 10), st.text(max_size=3))
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.just("b"), scalars, max_size=1))
properties = st.fixed_dictionaries({"a": values})
users = st.fixed_dictionaries({"x": values}, optional={"tags": values})
HISTORY = ListHistory(StoredEvent("purchase", NOW - DAY, {"a": "lens"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(loaded=st.lists(journeys(), min_size=1, max_size=3),
       inputs=st.lists(st.tuples(users, properties), min_size=1, max_size=6))
def test_durable_decides_exactly_as_compiled(shared: DurableMatcher, loaded: list[dsl.CompiledJourney],
                                             inputs: list[tuple[Any, Any]]) -> None:
    keyed = {f"j{i}": compiled for i, compiled in enumerate(loaded)}
    reference = CompiledMatcher()
    reference.load(keyed)
    shared.load(keyed)
    for user, event in inputs:
        with_event = scope(user, event, HISTORY)
        for name in EVENTS:
            assert shared.on_event(name, with_event) == reference.on_event(name, with_event)
        profile = scope(user, None, HISTORY)
        assert shared.on_profile_change(profile) == reference.on_profile_change(profile)
        for key in keyed:
            assert shared.audience_holds(key, profile) is reference.audience_holds(key, profile)


# Where durable-rules' own comparison differs from the language's: each must still agree.
TRAPS = [
    ('event.a < "a!"', "a", True),  # it compares raw JSON: the closing quote sorts after "!"
    ('event.a <= "a b"', "a", True),
    ('event.a > "a"', "a!", True),
    ("event.a > 10", "11", False),  # it compares a number with text as text
    ('event.a == "5"', 5, False),
    ("event.a == 1", True, False),  # true == 1 to it
    ("event.a > 0", True, False),
    ("event.a == true", 1, False),
    ("event.a == 9007199254740992", 2**53 + 1, False),  # beyond 2**53 an int meeting a double rounds
    ("event.a == 0.00001", 1e-05, True),  # its JSON parser cannot read 1e-05
    ('event.a == "a"', 'a"b', False),
    ("event.a >= 0", -0.0, True),
    ("-5 < event.a", -2.5, True),
]


@pytest.mark.parametrize(("where", "value", "enters"), TRAPS)
def test_durable_rules_own_comparisons_never_leak_through(durable: DurableMatcher, where: str, value: Any,
                                                          enters: bool) -> None:
    loaded = {"j": journey(f'trigger event "e1" where {where}')}
    reference = CompiledMatcher()
    reference.load(loaded)
    durable.load(loaded)
    decided = durable.on_event("e1", scope({}, {"a": value}))
    assert decided == reference.on_event("e1", scope({}, {"a": value}))
    assert decided.enter == ({"j"} if enters else set())


# --------------------------------------------------------------------------- what durable-rules decides


def test_durable_rules_decides_the_translatable_part_and_our_predicates_the_rest() -> None:
    rules = translate("v1", journey('trigger event "purchase" where event.category == "lens" and event.amount >= 100 '
                                    'and count of "purchase" ever == 0'))
    (enter,) = (rule for rule in rules.rules if rule.kind == "enter")
    assert enter.conditions == ({"k": 0}, {"s0": "lens"}, {"$gte": {"n1": 100}})
    assert enter.residual(scope({}, {}, ListHistory())) is True
    assert enter.residual(scope({}, {}, HISTORY)) is False


def test_ordinary_values_never_fall_back(durable: DurableMatcher) -> None:
    durable.load({"lens": journey('trigger event "purchase" where event.category == "lens" and event.amount > 10.5',
                                  "audience user.total_spend >= 100 and user.vip == true")})
    decided = [durable.on_event("purchase", scope({"total_spend": spend, "vip": vip}, {"category": c, "amount": a}))
               for spend, vip, c, a in [(100, True, "lens", 11), (99.5, True, "lens", 11), (100, 1, "lens", 11),
                                        (100, True, "Lens", 11), (100, True, "lens", 10.5), (500, True, "lens", 12.25)]]
    assert [d.enter for d in decided] == [{"lens"}, set(), set(), set(), set(), {"lens"}]
    assert durable.fallbacks == 0


@pytest.mark.parametrize("amount", [1e-05, 2**60, float("nan")])
def test_a_value_durable_rules_cannot_hold_is_decided_by_the_compiled_predicates(durable: DurableMatcher,
                                                                                 amount: float) -> None:
    durable.load({"big": journey('trigger event "purchase" where event.amount > 0')})
    assert durable.on_event("purchase", scope({}, {"amount": amount})).enter == ({"big"} if amount > 0 else set())
    assert durable.fallbacks == 1


# --------------------------------------------------------------------------- the guards


def test_more_than_1024_distinct_users_evaluate_statelessly(durable: DurableMatcher) -> None:
    """durable-rules holds 1,024 sessions per ruleset, then raises MemoryError: each
    evaluation's session is deleted, so users beyond that keep being decided."""
    durable.load({"big": journey('trigger event "purchase" where event.amount >= 100',
                                 "audience user.id != 7")})
    entered = [bool(durable.on_event("purchase", scope({"id": user}, {"amount": 50 + user % 100})).enter)
               for user in range(1_500)]
    assert entered == [user % 100 >= 50 and user != 7 for user in range(1_500)]
    assert durable.fallbacks == 0


def test_one_ruleset_per_journey_version_so_every_rule_that_holds_fires(durable: DurableMatcher) -> None:
    """durable-rules fires one rule per posted event and ruleset: every version has its own
    ruleset, and within it the input is a fact, so entry, exit, goal and wait all fire."""
    everything = journey('trigger event "purchase"', 'exit on event "purchase" where event.amount > 0',
                         'goal "bought" on event "purchase" within 7d', 'goal "any" when exists(user.id) within 7d',
                         steps='  @w wait for event "purchase" up to 1d:\n    received:\n      pass\n'
                               '    timeout:\n      pass')
    durable.load({"v1": everything, "v2": everything})
    decisions = durable.on_event("purchase", scope({"id": 1}, {"amount": 5}))
    assert decisions == Decisions(enter=frozenset({"v1", "v2"}), exit=frozenset({"v1", "v2"}),
                                  goals=frozenset({(v, g) for v in ("v1", "v2") for g in ("bought", "any")}),
                                  waits=frozenset({("v1", "w"), ("v2", "w")}))
    assert len({translate(key, everything).name for key in ("v1", "v2")}) == 2
    assert durable.child.status()["rulesets"] == 2


def test_an_exception_inside_an_action_is_raised_not_swallowed() -> None:
    """durable-rules catches an action's exception and keeps it in the session state; the
    host reads it back and raises."""
    rules = translate("v1", journey('trigger event "purchase"'))

    def failing(closure: object) -> None:
        raise ValueError("the action broke")

    host = RulesHost()
    host.register(rules.name, rules.definition(), action=failing)
    with pytest.raises(ActionFailed, match="the action broke"):
        host.evaluate(rules.name, {"f": 1, "k": 0, "i": 1})
    recording = RulesHost()  # and the same fact with the real actions decides
    recording.register(rules.name, rules.definition())
    assert sorted(recording.evaluate(rules.name, {"f": 1, "k": 0, "i": 1})) == ["r0", "r1"]


def test_a_killed_child_costs_one_evaluation_which_is_retried(durable: DurableMatcher) -> None:
    durable.load({"lens": journey('trigger event "purchase" where event.category == "lens"')})
    assert durable.on_event("purchase", scope({}, {"category": "lens"})).enter == {"lens"}
    first = durable.child.pid
    os.kill(first, signal.SIGKILL)
    assert durable.on_event("purchase", scope({}, {"category": "lens"})).enter == {"lens"}  # retried on a new child
    assert durable.child.restarts == 1 and durable.child.pid != first
    assert durable.on_event("purchase", scope({}, {"category": "care"})).enter == set()  # and the engine goes on
    assert durable.child.restarts == 1


def test_the_child_runs_no_timer_or_dispatch_threads(durable: DurableMatcher) -> None:
    """durable-rules' own host starts a dispatch and a timer thread (timers, persistence):
    ours does not, in the child nor here."""
    durable.load({"lens": journey('trigger event "purchase"')})
    durable.on_event("purchase", scope())
    assert durable.child.status()["threads"] == 1
    before = threading.active_count()
    RulesHost()
    assert threading.active_count() == before


def test_close_ends_the_child(durable: DurableMatcher) -> None:
    durable.load({"lens": journey('trigger event "purchase"')})
    pid = durable.child.pid
    durable.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)  # already reaped: the process is gone
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_child_ends_with_the_interpreter() -> None:
    """A matcher never closed: its child is stopped (and reaped) before the interpreter exits."""
    program = ("from engine.durable import DurableMatcher\n"
               "from tests.engine.matcher_conformance import journey\n"
               "matcher = DurableMatcher()\n"
               "matcher.load({'v': journey('trigger event \"purchase\"')})\n"
               "print(matcher.child.pid)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    with pytest.raises(ProcessLookupError):
        os.kill(int(done.stdout), 0)


def test_the_definition_is_plain_json() -> None:
    rules = translate("v1", journey('trigger event "purchase" where event.amount > 2.5 and event.vip == true'))
    assert json.loads(json.dumps(rules.definition())) == rules.definition()


# --------------------------------------------------------------------------- choosing the backend


def test_simulating_the_examples_gives_the_same_output_on_both_backends() -> None:
    from engine.durable.backend import make_matcher
    from journeyflow.simulate import read_events, simulate

    root = Path(__file__).resolve().parents[2] / "examples"
    sources = [path.read_text(encoding="utf-8") for path in sorted((root / "journeys").glob("*.journey"))]
    messages = read_events(root / "events/lens_care_buyers.jsonl")
    durable = make_matcher("durable")
    assert isinstance(durable, DurableMatcher)
    try:
        on_durable = simulate(sources, messages, trace=True, matcher=durable)
    finally:
        durable.close()
    assert on_durable == simulate(sources, messages, trace=True, matcher=make_matcher("compiled"))
    assert on_durable
