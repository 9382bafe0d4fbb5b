"""`DurableMatcher`: the `Matcher` whose rules are evaluated by durable-rules.

Per input, every journey version the input may concern gets one fact, asserted in that
version's own ruleset in the child process (`supervisor.py`, `child.py`); the child answers
with the rules that fired, and this process checks each fired rule's residual, the part of
its condition durable-rules cannot express (`translate.py`). Everything per user stays in our
tables: durable-rules keeps no session past one evaluation.

It decides exactly as `CompiledMatcher` does: the conformance suite and a differential
property test pin that. Where a value cannot be represented exactly in durable-rules, that
journey's compiled predicates decide that input, and `fallbacks` counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from dsl.graph import CompiledJourney

from ..matcher import CompiledMatcher, Decisions, JourneyKey, Matcher
from ..scope import Scope
from .errors import DurableActionFailed
from .limits import check
from .supervisor import REPLY_TIMEOUT, ChildProcess
from .translate import AUDIENCE, PROFILE, JourneyRules, translate

Fallback = Callable[[CompiledMatcher], Decisions]


@dataclass(frozen=True)
class _Loaded:
    """One immutable snapshot of the live journeys, swapped whole by `load`."""

    journeys: Mapping[JourneyKey, JourneyRules] = field(default_factory=dict)
    compiled: Mapping[JourneyKey, CompiledMatcher] = field(default_factory=dict)
    by_event: Mapping[str, tuple[JourneyRules, ...]] = field(default_factory=dict)
    any_input: tuple[JourneyRules, ...] = ()  # concerned by every input (`exit when`, `when` goals)
    on_profile: tuple[JourneyRules, ...] = ()


class DurableMatcher(Matcher):
    """Rules in durable-rules, one ruleset per journey version, in a supervised child."""

    def __init__(self, reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.child = ChildProcess(reply_timeout)
        self.fallbacks = 0  # inputs a journey's compiled predicates decided instead
        self._loaded = _Loaded()

    def load(self, journeys: Mapping[JourneyKey, CompiledJourney]) -> None:
        """Translate and check every journey first: one over a limit refuses the whole load,
        and the journeys loaded before stay live."""
        translated = {key: translate(key, journey) for key, journey in journeys.items()}
        for rules in translated.values():
            check(rules)
        self.child.load({rules.name: rules.definition() for rules in translated.values()})
        self._loaded = _snapshot(translated, journeys)

    def on_event(self, name: str, scope: Scope) -> Decisions:
        loaded = self._loaded
        journeys = loaded.by_event.get(name, loaded.any_input)
        return self._decide(((rules, rules.fact(rules.events.get(name), scope)) for rules in journeys), scope,
                            lambda compiled: compiled.on_event(name, scope))

    def on_profile_change(self, scope: Scope) -> Decisions:
        return self._decide(((rules, rules.fact(PROFILE, scope)) for rules in self._loaded.on_profile), scope,
                            lambda compiled: compiled.on_profile_change(scope))

    def audience_holds(self, key: JourneyKey, scope: Scope) -> bool:
        rules = self._loaded.journeys[key]
        fact = rules.fact(AUDIENCE, scope)
        if fact is None:
            self.fallbacks += 1
            return self._loaded.compiled[key].audience_holds(key, scope)
        (fired,) = self._evaluate([(rules, fact)])
        return any(rules.by_id[rule_id].kind == "audience" and rules.by_id[rule_id].residual(scope)
                   for rule_id in fired)

    def close(self) -> None:
        """Stop the child process. Also done at interpreter exit."""
        self.child.close()

    def __enter__(self) -> DurableMatcher:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ deciding

    def _decide(self, asked: Iterable[tuple[JourneyRules, dict[str, Any] | None]], scope: Scope,
                fallback: Fallback) -> Decisions:
        decisions = _Decisions()
        sent: list[tuple[JourneyRules, dict[str, Any]]] = []
        for rules, fact in asked:
            if fact is None:
                self.fallbacks += 1
                decisions.merge(fallback(self._loaded.compiled[rules.key]))
            else:
                sent.append((rules, fact))
        for (rules, _), fired in zip(sent, self._evaluate(sent) if sent else [], strict=True):
            for rule_id in fired:
                rule = rules.by_id[rule_id]
                if rule.residual(scope):
                    decisions.add(rules.key, rule.kind, rule.name)
        return decisions.frozen()

    def _evaluate(self, sent: list[tuple[JourneyRules, dict[str, Any]]]) -> list[list[str]]:
        try:
            return self.child.evaluate([(rules.name, fact) for rules, fact in sent])
        except DurableActionFailed as error:
            journey = next((rules for rules, _ in sent if rules.name == error.ruleset), None)
            where = f'journey "{journey.journey}" (version {journey.key})' if journey else error.ruleset
            raise DurableActionFailed(f"a durable-rules action failed in {where}: {error}", error.ruleset) from error


class _Decisions:
    """Decisions being gathered for one input."""

    def __init__(self) -> None:
        self.enter: set[JourneyKey] = set()
        self.exit: set[JourneyKey] = set()
        self.goals: set[tuple[JourneyKey, str]] = set()
        self.waits: set[tuple[JourneyKey, str]] = set()

    def add(self, key: JourneyKey, kind: str, name: str) -> None:
        if kind in ("enter", "enter_when"):
            self.enter.add(key)
        elif kind in ("exit", "exit_when"):
            self.exit.add(key)
        elif kind in ("goal", "goal_when"):
            self.goals.add((key, name))
        elif kind == "wait":
            self.waits.add((key, name))

    def merge(self, other: Decisions) -> None:
        self.enter |= other.enter
        self.exit |= other.exit
        self.goals |= other.goals
        self.waits |= other.waits

    def frozen(self) -> Decisions:
        return Decisions(frozenset(self.enter), frozenset(self.exit), frozenset(self.goals), frozenset(self.waits))


def _snapshot(translated: Mapping[JourneyKey, JourneyRules],
              journeys: Mapping[JourneyKey, CompiledJourney]) -> _Loaded:
    compiled = {}
    for key, journey in journeys.items():
        compiled[key] = CompiledMatcher()
        compiled[key].load({key: journey})
    any_input = tuple(rules for rules in translated.values() if rules.any_input)
    names = {name for rules in translated.values() for name in rules.events}
    by_event = {name: tuple(rules for rules in translated.values() if name in rules.events or rules.any_input)
                for name in names}
    on_profile = tuple(rules for rules in translated.values() if rules.on_profile)
    return _Loaded(dict(translated), compiled, by_event, any_input, on_profile)
