"""A journey version's conditions as one durable-rules ruleset, plus what it cannot express.

One ruleset per journey version, because durable-rules lets only one rule of a ruleset fire
per posted event; within the ruleset the input is asserted as a *fact*, which every matching
rule sees, so one purchase can be a journey's entry, goal and awaited event at once.

Each rule is a chain of durable-rules conditions: first a test of which input this is (an
event by its index in the journey's event names, a profile change, an audience question, or
"any event or profile change" for `exit when` and `when` goals), then every top-level `and`
part of the rule's condition (and of the audience, for entries) that durable-rules can decide
*exactly as* `engine.expressions` does. The other parts stay compiled predicates: the rule's
*residual*, evaluated in this process for the rules durable-rules fired. A rule holds when
both say yes: the same conjunction the compiled matcher evaluates.

Exactly is the hard part. durable-rules compares across types on its own terms ("11" > 10
holds: it prints the number and compares text; true == 1 holds), and it orders text by
comparing raw JSON, closing quote included, so "a" sorts after "a!". The language says a
comparison across types is false. So the fact never carries a raw value: a path compared
with text is sent as `s<k>` only when its value is text, with a number as `n<k>` only when it
is a number (a bool is not), with a bool as `b<k>`. Only `path OP literal` is translated, for
`==` and the orderings; text literals that hold a space or "!" are not translated for
orderings. A value durable-rules cannot represent exactly (an int beyond 2**53, a float it
cannot parse such as 1e-05, text with quotes, backslashes or control characters, or very long
text) makes `JourneyRules.fact` return None, and the journey's compiled predicates decide
that input. History counts, functions, arithmetic, `in`, `!=`, `or`, `not`, null and
comparisons of two paths are residuals.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from dsl import model as m
from dsl.graph import CompiledJourney, WaitForEventNode

from ..expressions import Compiled, Predicate, always, compile_expr, compile_predicate
from ..scope import Scope

KIND: Final = "k"  # fact property: which input this is (an event's index, PROFILE or AUDIENCE)
ANY_INPUT: Final = "i"  # fact property: 1 on every event and profile change
HANDLED: Final = "f"  # fact property: 1 on every fact, matched by each ruleset's `handled` rule
PROFILE: Final = -1
AUDIENCE: Final = -2

MAX_SLOTS: Final = 200  # paths per ruleset: a fact holds at most 255 properties (state.h)
MAX_TEXT: Final = 1_000  # characters: durable-rules keeps string lengths in 16 bits
EXACT_INT: Final = 2**53  # beyond this an int meeting a double is no longer exact

RuleKind = Literal["handled", "enter", "enter_when", "exit", "exit_when", "goal", "goal_when", "wait", "audience"]
Condition = dict[str, Any]  # one durable-rules condition, as JSON

_PLAIN_TEXT = re.compile(r'[^\x00-\x1f"\\\ud800-\udfff]*')
_ORDERINGS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_MIRRORED = {"==": "==", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Rule:
    """One rule of a journey's ruleset: what it decides, for whom it was written, and how."""

    id: str  # the rule's name in the ruleset
    kind: RuleKind
    name: str  # the goal's name or the wait node's id; empty for the other kinds
    label: str  # the journey setting it comes from, for messages
    conditions: tuple[Condition, ...]  # durable-rules' part, in chain order, input test first
    residual: Predicate  # the rest, compiled

    def definition(self) -> dict[str, Any]:
        test = self.conditions[0] if len(self.conditions) == 1 else {"$and": list(self.conditions)}
        return {"all": [{"m": test}]}


@dataclass(frozen=True)
class Slot:
    """A path the ruleset compares, and the types (s, n, b) it compares it as."""

    index: int
    read: Compiled
    types: frozenset[str]


@dataclass(frozen=True)
class JourneyRules:
    """One journey version translated: the ruleset for durable-rules and what stays here."""

    key: str
    journey: str  # the journey's name, for messages
    name: str  # the ruleset's name: the key and a digest of its rules
    events: Mapping[str, int]  # event name -> its index, the value of KIND
    rules: tuple[Rule, ...]
    slots: tuple[Slot, ...]
    by_id: Mapping[str, Rule] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", {rule.id: rule for rule in self.rules})

    def definition(self) -> dict[str, Any]:
        return {rule.id: rule.definition() for rule in self.rules}

    @property
    def any_input(self) -> bool:
        """Whether any input may concern it (`exit when`, `when` goals)."""
        return any(rule.kind in ("exit_when", "goal_when") for rule in self.rules)

    @property
    def on_profile(self) -> bool:
        return self.any_input or any(rule.kind == "enter_when" for rule in self.rules)

    def fact(self, kind: int | None, scope: Scope) -> dict[str, Any] | None:
        """The fact to assert for one input, or None when a value it compares cannot be
        represented exactly in durable-rules (the compiled predicates decide that input)."""
        fact: dict[str, Any] = {HANDLED: 1} if kind is None else {HANDLED: 1, KIND: kind}
        if kind != AUDIENCE:
            fact[ANY_INPUT] = 1
        for slot in self.slots:
            typed = _typed(slot.read(scope), slot.types)
            if isinstance(typed, _Unrepresentable):
                return None
            if typed is not None:
                fact[f"{typed[0]}{slot.index}"] = typed[1]
        return fact


def translate(key: str, journey: CompiledJourney) -> JourneyRules:
    builder = _Builder()
    # Every fact must fire some rule: deleting the session of a fact no rule handled
    # segfaults durable-rules (seen here, about one time in two).
    builder.add("handled", "", "the catch-all rule", {HANDLED: 1})
    for index, trigger in enumerate(journey.triggers):
        if isinstance(trigger, m.EventTrigger):
            builder.add("enter", "", f'trigger #{index + 1} (event "{trigger.event}", line {trigger.loc.line})',
                        builder.event(trigger.event), trigger.where, journey.audience)
        elif isinstance(trigger, m.ConditionTrigger):
            builder.add("enter_when", "", f"trigger #{index + 1} (when, line {trigger.loc.line})",
                        {KIND: PROFILE}, trigger.condition, journey.audience)
    builder.add("audience", "", "audience", {KIND: AUDIENCE}, journey.audience)
    for rule in journey.exits:
        if isinstance(rule, m.ExitOnEvent):
            builder.add("exit", "", f'exit on event "{rule.event}" (line {rule.loc.line})',
                        builder.event(rule.event), rule.where)
        else:
            builder.add("exit_when", "", f"exit when (line {rule.loc.line})", {ANY_INPUT: 1}, rule.condition)
    for goal in journey.goals:
        label = f'goal "{goal.name}" (line {goal.loc.line})'
        if goal.event is None:
            builder.add("goal_when", goal.name, label, {ANY_INPUT: 1}, goal.where)
        else:
            builder.add("goal", goal.name, label, builder.event(goal.event), goal.where)
    for node in journey.nodes.values():
        if isinstance(node, WaitForEventNode):
            builder.add("wait", node.id, f'wait for event "{node.event}" (@{node.id}, line {node.line})',
                        builder.event(node.event), node.where)
    return builder.build(key, journey.name)


# --------------------------------------------------------------------------- building


class _Builder:
    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.slots: dict[tuple[str, ...], tuple[int, set[str]]] = {}
        self.rules: list[Rule] = []

    def event(self, name: str) -> Condition:
        return {KIND: self.events.setdefault(name, len(self.events))}

    def add(self, kind: RuleKind, name: str, label: str, first: Condition, *conditions: m.Expr | None) -> None:
        translated: list[Condition] = []
        residual: list[m.Expr] = []
        for condition in conditions:
            for part in _conjuncts(condition):
                done = self._translate(part)
                if done is None:
                    residual.append(part)
                else:
                    translated.append(done)
        self.rules.append(Rule(f"r{len(self.rules)}", kind, name, label, (first, *translated), _all(residual)))

    def build(self, key: str, journey: str) -> JourneyRules:
        slots = tuple(Slot(index, compile_expr(m.Path(parts)), frozenset(types))
                      for parts, (index, types) in self.slots.items())
        definition = {rule.id: rule.definition() for rule in self.rules}
        digest = hashlib.sha256(json.dumps([key, definition], sort_keys=True).encode()).hexdigest()[:16]
        return JourneyRules(key, journey, f"journey_{digest}", dict(self.events), tuple(self.rules), slots)

    def _translate(self, part: m.Expr) -> Condition | None:
        """`path OP literal` (or mirrored) as a durable-rules condition on a typed slot."""
        if not isinstance(part, m.Compare) or part.op not in _MIRRORED:
            return None
        path, literal, op = part.left, _literal(part.right), str(part.op)
        if not isinstance(path, m.Path):
            path, literal, op = part.right, _literal(part.left), _MIRRORED[op]
        if not isinstance(path, m.Path) or literal is _NOT_LITERAL:
            return None
        kind = _literal_type(literal, op)
        slot = None if kind is None else self._slot(path.parts, kind)
        if slot is None:
            return None
        prop = f"{kind}{slot}"
        return {prop: literal} if op == "==" else {_ORDERINGS[op]: {prop: literal}}

    def _slot(self, parts: tuple[str, ...], kind: str) -> int | None:
        known = self.slots.get(parts)
        if known is None:
            if len(self.slots) >= MAX_SLOTS:
                return None
            known = self.slots[parts] = (len(self.slots), set())
        known[1].add(kind)
        return known[0]


def _conjuncts(expr: m.Expr | None) -> Iterator[m.Expr]:
    """The top-level `and` parts, left to right: `a and (b and c)` gives a, b, c."""
    if expr is None:
        return
    if isinstance(expr, m.Binary) and expr.op == "and":
        yield from _conjuncts(expr.left)
        yield from _conjuncts(expr.right)
    else:
        yield expr


def _all(parts: list[m.Expr]) -> Predicate:
    checks = tuple(compile_predicate(part) for part in parts)
    if not checks:
        return always
    if len(checks) == 1:
        return checks[0]
    return lambda scope: all(check(scope) for check in checks)


# --------------------------------------------------------------------------- values

_NOT_LITERAL: Final = object()


class _Unrepresentable:
    """The marker for a value of the right type that durable-rules cannot hold exactly."""


_UNREPRESENTABLE: Final = _Unrepresentable()


def _literal(expr: m.Expr) -> Any:
    """A literal's value (negated numbers included), or _NOT_LITERAL."""
    if isinstance(expr, m.Lit) and expr.value is not None:
        return expr.value
    if (isinstance(expr, m.Unary) and expr.op == "-" and isinstance(expr.operand, m.Lit)
            and _is_number(expr.operand.value)):
        return -expr.operand.value  # type: ignore[operator]
    return _NOT_LITERAL


def _literal_type(value: Any, op: str) -> str | None:
    if isinstance(value, bool):
        return "b" if op == "==" else None  # `x < true` is always false: left to the residual
    if _is_number(value):
        return "n" if _exact_number(value) else None
    if isinstance(value, str) and _plain_text(value):
        return "s" if op == "==" or not (" " in value or "!" in value) else None
    return None


def _typed(value: Any, types: frozenset[str]) -> tuple[str, Any] | _Unrepresentable | None:
    """The value as the typed property it is sent as; None when it has none of the slot's
    types (every comparison of it is then false, in both backends); _UNREPRESENTABLE when it
    has the right type but durable-rules cannot hold it exactly."""
    if isinstance(value, bool):
        return ("b", value) if "b" in types else None
    if isinstance(value, int | float):
        if "n" not in types:
            return None
        return ("n", value) if _exact_number(value) else _UNREPRESENTABLE
    if isinstance(value, str):
        if "s" not in types:
            return None
        return ("s", value) if _plain_text(value) else _UNREPRESENTABLE
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _exact_number(value: int | float) -> bool:
    """Whether durable-rules reads it back as the same number and compares it exactly: ints
    within 2**53 (they meet doubles exactly), floats whose shortest repr has no exponent (its
    JSON parser stops at "e-")."""
    if isinstance(value, int):
        return -EXACT_INT <= value <= EXACT_INT
    return math.isfinite(value) and "e" not in repr(value)


def _plain_text(value: str) -> bool:
    """Text that JSON writes as itself (no quote, backslash or control character), is valid
    UTF-8 and short enough for durable-rules' 16-bit lengths."""
    return len(value) <= MAX_TEXT and _PLAIN_TEXT.fullmatch(value) is not None
