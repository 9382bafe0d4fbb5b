"""Which profile fields and which event histories a journey's conditions read, and which fields
its steps write.

Why: a profile change (an identify, another journey's `update`, an import, a merge) must
re-evaluate the `trigger when`, `exit when` and `when` goals that read the changed fields, and
only those: the engine indexes journeys by what they read (engine/conditions.py), so an update
of a field no condition reads costs nothing.

A field is the first name after `user.`: `user.address.city` reads `address`; tags are the
field `tags`. (A bare `user` is refused by validation, so every read names its field.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import graph as g
from . import model as m


@dataclass(frozen=True)
class Reads:
    """What a set of conditions depends on: profile fields, and event names counted in history."""

    fields: frozenset[str] = frozenset()
    history: frozenset[str] = frozenset()

    def __or__(self, other: Reads) -> Reads:
        return Reads(self.fields | other.fields, self.history | other.history)


NOTHING = Reads()


def _children(expr: m.Expr) -> Iterator[m.Expr]:
    match expr:
        case m.Call(args=args) | m.ListExpr(items=args):
            yield from args
        case m.Unary(operand=operand):
            yield operand
        case m.Binary(left=left, right=right) | m.Compare(left=left, right=right):
            yield left
            yield right
        case m.ObjectExpr(items=items):
            yield from (value for _, value in items)
        case _:
            return


def expr_reads(expr: m.Expr | None) -> Reads:
    """The profile fields and histories one expression reads. A `count of` filter reads the
    counted events' properties, not the profile, so only the event name is kept from it."""
    if expr is None:
        return NOTHING
    fields: set[str] = set()
    history: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, m.Path):
            if node.root == "user" and len(node.parts) > 1:
                fields.add(node.parts[1])
        elif isinstance(node, m.History):
            history.add(node.event)
        else:
            stack.extend(_children(node))
    return Reads(frozenset(fields), frozenset(history))


@dataclass(frozen=True)
class ProfileConditions:
    """The profile-level conditions of one journey, by role, with what each role reads.

    `enter` is the `trigger when`s together with the audience (a condition trigger enters only
    through it, so an audience that becomes true while the trigger holds is a change too).
    `counted` is the events the `trigger when`s themselves count: a new such event can make a
    trigger true. An event the audience counts only says who may enter, so it enters no one:
    a win-back for "60 days without a purchase" whose audience is "has ever bought" must not
    be entered by a purchase."""

    enter: Reads
    exit: Reads
    goals: Reads
    counted: frozenset[str] = frozenset()

    @property
    def all(self) -> Reads:
        return self.enter | self.exit | self.goals


def profile_conditions(journey: g.CompiledJourney) -> ProfileConditions:
    triggers = [t.condition for t in journey.triggers if isinstance(t, m.ConditionTrigger)]
    enter = NOTHING
    for condition in triggers:
        enter = enter | expr_reads(condition)
    counted = enter.history
    if triggers:
        enter = enter | expr_reads(journey.audience)
    exit_ = NOTHING
    for rule in journey.exits:
        if isinstance(rule, m.ExitWhen):
            exit_ = exit_ | expr_reads(rule.condition)
    goals = NOTHING
    for goal in journey.goals:
        if goal.event is None:
            goals = goals | expr_reads(goal.where)
    return ProfileConditions(enter, exit_, goals, counted)


def changed_fields(before: Mapping[str, object], after: Mapping[str, object]) -> frozenset[str]:
    """The top-level fields whose values differ between two versions of a profile."""
    return frozenset(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
