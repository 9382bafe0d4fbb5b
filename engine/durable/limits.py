"""durable-rules' hard limits, checked when a journey is loaded for this backend.

Each limit was hit on this machine (durable-rules 2.0.28) and found in its C source
(src/rules); crossing one loses inputs or hangs the engine, so a journey that could cross one
is refused up front with a message naming the journey and the first rule over the limit.

- **64 conditions matching at once.** events.c walks the matching conditions of a fact with a
  fixed stack of 64 (MAX_STACK_SIZE); the 65th fails the assertion with error 303.
- **512 branches from one condition.** The conditions following one condition live in an
  open-addressing table of 512 slots (rete.c, NEXT_BUCKET_LENGTH); with 513 different ones
  (say 513 rules on one field) building the ruleset never returns.
- **256 rules on one chain of conditions.** Rules whose conditions are the same list end on
  one node whose rule list holds 256 (BETA_LIST_LENGTH); the 257th fails with error 108.

The conditions are the chains `translate` builds; like durable-rules, equal prefixes share
nodes. The count of conditions that can match one input at once is bounded from above, so a
refusal may come early but a journey that passes can never reach error 303: below the input
test, every following condition counts as matching, except that equalities on one property
with different values count once (a fact has one value per property).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import DurableLimitExceeded
from .translate import ANY_INPUT, AUDIENCE, HANDLED, KIND, PROFILE, Condition, JourneyRules, Rule

MAX_MATCHING: Final = 64
MAX_BRANCHES: Final = 512
MAX_RULES_PER_CHAIN: Final = 256

_OPERATORS: Final = frozenset({"$lt", "$lte", "$gt", "$gte", "$and", "$or", "$neq"})


@dataclass
class _Node:
    """A condition in the network: the conditions that follow it, and the rules ending here."""

    condition: Condition | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    rules: int = 0

    def bound(self) -> int:
        """At most how many conditions sit on durable-rules' stack at once below this node:
        all matching children are pushed, then the walk goes down one of them."""
        if not self.children:
            return 0
        at_once = _matching_at_once(child.condition for child in self.children.values())
        return max(at_once, at_once - 1 + max(child.bound() for child in self.children.values()))


def check(rules: JourneyRules) -> None:
    """Raise DurableLimitExceeded naming the journey and the first rule over a limit."""
    root = _Node()
    for rule in rules.rules:
        node = root
        for condition in rule.conditions:
            key = json.dumps(condition, sort_keys=True)
            if key not in node.children:
                if len(node.children) == MAX_BRANCHES:
                    raise _refusal(rules, rule, f"it would be the {MAX_BRANCHES + 1}th branch after one condition "
                                                f"(for example the {MAX_BRANCHES + 1}th event or value tested on one "
                                                f"field); durable-rules builds at most {MAX_BRANCHES}, and with one "
                                                f"more its ruleset build never returns")
                node.children[key] = _Node(condition)
            node = node.children[key]
        node.rules += 1
        if node.rules > MAX_RULES_PER_CHAIN:
            raise _refusal(rules, rule, f"it would be the {node.rules}th rule with exactly these conditions; "
                                        f"durable-rules takes at most {MAX_RULES_PER_CHAIN} (error 108)")
        for what, bound in _bounds(root, rule, rules):
            if bound > MAX_MATCHING:
                raise _refusal(rules, rule, f"with it, {bound} conditions could match one {what} at once; "
                                            f"durable-rules handles at most {MAX_MATCHING} (error 303)")


def _bounds(root: _Node, rule: Rule, rules: JourneyRules) -> list[tuple[str, int]]:
    """The stack bound for every input the rule's first condition lets in."""
    first = rule.conditions[0]
    kinds = [first[KIND]] if KIND in first else [*rules.events.values(), PROFILE, AUDIENCE]
    names = {index: name for name, index in rules.events.items()}
    return [(_describe(kind, names), _root_bound(root, kind)) for kind in kinds]


def _root_bound(root: _Node, kind: int) -> int:
    """Below the root only the input's own test, `any input` (but for audience checks) and
    the catch-all rule's test can match."""
    tests = [{KIND: kind}, {HANDLED: 1}] + ([] if kind == AUDIENCE else [{ANY_INPUT: 1}])
    tops = [node for test in tests if (node := root.children.get(json.dumps(test))) is not None]
    if not tops:
        return 0
    return max(len(tops), len(tops) - 1 + max(node.bound() for node in tops))


def _describe(kind: int, names: dict[int, str]) -> str:
    if kind == PROFILE:
        return "profile change"
    if kind == AUDIENCE:
        return "audience check"
    return f'"{names.get(kind, "?")}" event'


def _matching_at_once(conditions: Any) -> int:
    """Conditions that can hold together: equalities on one property count once per value."""
    others = 0
    equal_values: defaultdict[str, Counter[Any]] = defaultdict(Counter)
    for condition in conditions:
        (prop, value), = condition.items()
        if prop in _OPERATORS:
            others += 1
        else:
            equal_values[prop][_value_key(value)] += 1
    return others + sum(max(counts.values()) for counts in equal_values.values())


def _value_key(value: Any) -> Any:
    """5 and 5.0 are one value to durable-rules' comparison: count them together."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (type(value).__name__, value)
    return ("number", float(value))


def _refusal(rules: JourneyRules, rule: Rule, why: str) -> DurableLimitExceeded:
    return DurableLimitExceeded(
        f'journey "{rules.journey}" cannot run on the durable-rules backend: {rule.label}: {why}. '
        f"Use the compiled backend (--rules-backend compiled) or split the journey.")
