"""Which live journeys an event or a profile change concerns: the rules interface.

The runtime asks one question per input: given this event (or this changed profile), which
journeys should the user enter or leave, which goals did they reach, which waits does the
event end? It asks a `Matcher`, so that rule evaluation can be swapped for another backend
(a RETE network such as durable-rules) without touching the runtime; the same conformance
suite (tests/engine/matcher_conformance.py) pins every backend.

A matcher knows nothing of the user's runs. It says which rules hold *now*; whether the user
is in that journey, waiting in that step, or was already inside a condition that "becomes"
true is for the caller to decide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dsl import model as m
from dsl.graph import CompiledJourney, WaitForEventNode

from .expressions import always, compile_predicate
from .scope import Scope

JourneyKey = str  # the caller's id for one live journey version
Predicate = Callable[[Scope], bool]
# The caller's answer to "can this input no longer enter the user into this journey, whatever
# happens?" (an `entry once` journey they have entered, a paused one). The compiled backend asks
# it before a trigger's checks, so a user who cannot enter never has the audience evaluated.
Closed = Callable[[JourneyKey], bool]


@dataclass(frozen=True)
class Decisions:
    """What one input decides. `goals` holds (journey, goal name); `waits` (journey, node id)."""

    enter: frozenset[JourneyKey] = frozenset()
    exit: frozenset[JourneyKey] = frozenset()
    goals: frozenset[tuple[JourneyKey, str]] = frozenset()
    waits: frozenset[tuple[JourneyKey, str]] = frozenset()


class Matcher(Protocol):
    def load(self, journeys: Mapping[JourneyKey, CompiledJourney]) -> None:
        """Replace the set of live journeys."""
        ...

    def on_event(self, name: str, scope: Scope) -> Decisions:
        """An event arrived (`scope.event` is its properties): event triggers whose `where`
        and audience hold, exits on this event plus `exit when`s that hold, goals on this
        event plus `when` goals that hold, and the `wait for event` nodes it satisfies."""
        ...

    def on_profile_change(self, scope: Scope) -> Decisions:
        """The profile changed (no event): `trigger when`s that hold (with their audience),
        `exit when`s and `when` goals that hold. Never any waits."""
        ...

    def audience_holds(self, key: JourneyKey, scope: Scope) -> bool:
        """For entries by API or schedule; KeyError for a journey that is not loaded."""
        ...

    def close(self) -> None:
        """Release what the backend holds (durable-rules: its child process). Nothing, by default."""
        return None


# --------------------------------------------------------------------------- compiled backend

Keyed = tuple[tuple[JourneyKey, Predicate], ...]  # journey -> does it apply
Named = tuple[tuple[JourneyKey, str, Predicate], ...]  # (journey, goal or node) -> does it apply


@dataclass(frozen=True)
class _EventRules:
    """Every check one event name can trigger, across the live journeys that mention it."""

    enter: Keyed = ()
    exit: Keyed = ()
    goals: Named = ()
    waits: Named = ()


_NO_EVENT_RULES = _EventRules()


@dataclass(frozen=True)
class _Rules:
    """One immutable snapshot, swapped whole by `load`, so a reader never sees half of it."""

    audiences: Mapping[JourneyKey, Predicate] = field(default_factory=dict)
    by_event: Mapping[str, _EventRules] = field(default_factory=dict)
    enter_when: Keyed = ()
    exit_when: Keyed = ()
    goal_when: Named = ()


class CompiledMatcher(Matcher):
    """Predicates compiled to closures once per load, indexed by event name: an event costs
    the checks of the journeys that mention it, plus the profile-level conditions (`exit
    when`, `when` goals), which any input may have changed."""

    def __init__(self) -> None:
        self._rules = _Rules()

    def load(self, journeys: Mapping[JourneyKey, CompiledJourney]) -> None:
        self._rules = _compile(journeys)

    def on_event(self, name: str, scope: Scope, closed: Closed | None = None) -> Decisions:
        """As `Matcher.on_event`; with `closed`, the entries of journeys it names are not even
        evaluated (the answer differs from the plain one only by entries the caller would refuse)."""
        rules = self._rules
        here = rules.by_event.get(name, _NO_EVENT_RULES)
        return Decisions(
            enter=_holding(here.enter, scope, closed),
            exit=_holding(here.exit, scope) | _holding(rules.exit_when, scope),
            goals=_holding_named(here.goals, scope) | _holding_named(rules.goal_when, scope),
            waits=_holding_named(here.waits, scope),
        )

    def on_profile_change(self, scope: Scope, closed: Closed | None = None) -> Decisions:
        """As `Matcher.on_profile_change`, with `closed` as in `on_event`."""
        rules = self._rules
        return Decisions(
            enter=_holding(rules.enter_when, scope, closed),
            exit=_holding(rules.exit_when, scope),
            goals=_holding_named(rules.goal_when, scope),
        )

    def audience_holds(self, key: JourneyKey, scope: Scope) -> bool:
        return self._rules.audiences[key](scope)


def _holding(rules: Keyed, scope: Scope, closed: Closed | None = None) -> frozenset[JourneyKey]:
    if closed is None:
        return frozenset(key for key, holds in rules if holds(scope))
    return frozenset(key for key, holds in rules if not closed(key) and holds(scope))


def _holding_named(rules: Named, scope: Scope) -> frozenset[tuple[JourneyKey, str]]:
    return frozenset((key, name) for key, name, holds in rules if holds(scope))


# --------------------------------------------------------------------------- compiling


class _Collector:
    """Gathers predicates while journeys are walked; `rules()` freezes them. Several rules of
    one journey on one event (two `trigger event "x"` lines) become one `any` check, so a
    journey's audience is evaluated at most once per input."""

    def __init__(self) -> None:
        self.audiences: dict[JourneyKey, Predicate] = {}
        self.enter: defaultdict[str, dict[JourneyKey, list[Predicate]]] = defaultdict(dict)
        self.exit: defaultdict[str, dict[JourneyKey, list[Predicate]]] = defaultdict(dict)
        self.goals: defaultdict[str, list[tuple[JourneyKey, str, Predicate]]] = defaultdict(list)
        self.waits: defaultdict[str, list[tuple[JourneyKey, str, Predicate]]] = defaultdict(list)
        self.enter_when: dict[JourneyKey, list[Predicate]] = {}
        self.exit_when: dict[JourneyKey, list[Predicate]] = {}
        self.goal_when: list[tuple[JourneyKey, str, Predicate]] = []

    def add(self, key: JourneyKey, journey: CompiledJourney) -> None:
        self.audiences[key] = compile_predicate(journey.audience)
        for trigger in journey.triggers:
            if isinstance(trigger, m.EventTrigger):
                self.enter[trigger.event].setdefault(key, []).append(compile_predicate(trigger.where))
            elif isinstance(trigger, m.ConditionTrigger):
                self.enter_when.setdefault(key, []).append(compile_predicate(trigger.condition))
        for rule in journey.exits:
            if isinstance(rule, m.ExitOnEvent):
                self.exit[rule.event].setdefault(key, []).append(compile_predicate(rule.where))
            else:
                self.exit_when.setdefault(key, []).append(compile_predicate(rule.condition))
        for goal in journey.goals:
            named = (key, goal.name, compile_predicate(goal.where))
            (self.goal_when if goal.event is None else self.goals[goal.event]).append(named)
        for node in journey.nodes.values():
            if isinstance(node, WaitForEventNode):
                self.waits[node.event].append((key, node.id, compile_predicate(node.where)))

    def rules(self) -> _Rules:
        names = self.enter.keys() | self.exit.keys() | self.goals.keys() | self.waits.keys()
        by_event = {
            name: _EventRules(
                enter=self._entries(self.enter.get(name, {})),
                exit=_keyed(self.exit.get(name, {})),
                goals=tuple(self.goals.get(name, ())),
                waits=tuple(self.waits.get(name, ())),
            )
            for name in names
        }
        return _Rules(dict(self.audiences), by_event, self._entries(self.enter_when), _keyed(self.exit_when),
                      tuple(self.goal_when))

    def _entries(self, triggers: Mapping[JourneyKey, list[Predicate]]) -> Keyed:
        """A trigger enters only through the audience: both checks as one predicate."""
        return tuple((key, _both(_any(checks), self.audiences[key])) for key, checks in triggers.items())


def _compile(journeys: Mapping[JourneyKey, CompiledJourney]) -> _Rules:
    collector = _Collector()
    for key, journey in journeys.items():
        collector.add(key, journey)
    return collector.rules()


def _keyed(checks: Mapping[JourneyKey, list[Predicate]]) -> Keyed:
    return tuple((key, _any(predicates)) for key, predicates in checks.items())


def _any(predicates: Iterable[Predicate]) -> Predicate:
    checks = tuple(predicates)
    if len(checks) == 1:
        return checks[0]
    return lambda scope: any(check(scope) for check in checks)


def _both(first: Predicate, second: Predicate) -> Predicate:
    if second is always:
        return first
    return lambda scope: first(scope) and second(scope)
