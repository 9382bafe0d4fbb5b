"""Ready scenarios, read off the journey itself: what a marketer would test first.

"Enters and does nothing", "enters and reaches the goal", "enters, then the awaited event
arrives", "enters, then leaves by an exit rule": each is the trigger event, then at most one
more event, with properties that satisfy simple `where` conditions (`event.x == "a"`,
`in [...]`, the orderings, joined by `and`). Times are estimated from the graph (the waits on
the way to a `wait for`); the simulation then shows what really happens, which is the point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dsl import graph as g
from dsl import model as m
from dsl.durations import DAY, HOUR, WEEK

GOAL_AFTER = timedelta(days=1)  # when a goal event comes in the "reaches the goal" scenario
EXIT_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class ReadyEvent:
    after: timedelta  # from the start
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ready:
    key: str
    title: str
    events: tuple[ReadyEvent, ...]


def satisfying(where: m.Expr | None) -> dict[str, Any]:
    """Event properties that make simple conditions true; conditions it cannot read are left
    to the marketer (the simulation will say the trigger did not match)."""
    found: dict[str, Any] = {}
    _satisfy(where, found)
    return found


def _satisfy(expr: m.Expr | None, found: dict[str, Any]) -> None:
    if isinstance(expr, m.Binary) and expr.op == "and":
        _satisfy(expr.left, found)
        _satisfy(expr.right, found)
    elif isinstance(expr, m.Binary) and expr.op == "or":
        _satisfy(expr.left, found)
    elif isinstance(expr, m.Compare):
        key, value = _event_key(expr.left), _literal(expr.right)
        if key is None:  # `"a" == event.x`: the same, mirrored
            key, value = _event_key(expr.right), _literal(expr.left)
            if expr.op in ("<", "<=", ">", ">="):
                return
        if key is None or key in found:
            return
        match expr.op:
            case "==" if value is not _NOTHING:
                found[key] = value
            case "in" if isinstance(expr.right, m.ListExpr) and expr.right.items:
                first = _literal(expr.right.items[0])
                if first is not _NOTHING:
                    found[key] = first
            case ">" | ">=" | "<" | "<=" if isinstance(value, int | float) and not isinstance(value, bool):
                found[key] = value + {">": 1, ">=": 0, "<": -1, "<=": 0}[expr.op]


_NOTHING = object()


def _event_key(expr: m.Expr) -> str | None:
    if isinstance(expr, m.Path) and len(expr.parts) == 2 and expr.parts[0] == "event":
        return expr.parts[1]
    return None


def _literal(expr: m.Expr) -> Any:
    return expr.value if isinstance(expr, m.Lit) else _NOTHING


def reach_times(journey: g.CompiledJourney) -> dict[str, tuple[int, int]]:
    """For each node: the soonest and the latest a run can get there (seconds after entering)
    on the first path found, counting every wait on the way as it lasts."""
    reached: dict[str, tuple[int, int]] = {}
    todo = [(journey.start, 0, 0)]
    while todo:
        node_id, soonest, latest = todo.pop()
        if node_id == g.END or node_id in reached:
            continue
        reached[node_id] = (soonest, latest)
        node = journey.nodes[node_id]
        for label, target in reversed(list(g.successors(node))):
            low, high = _lasts(node, label)
            todo.append((target, soonest + low, latest + high))
    return reached


def _lasts(node: g.Node, label: str) -> tuple[int, int]:
    match node:
        case g.WaitNode(seconds=seconds, calendar=True):
            return seconds - HOUR, seconds + HOUR  # a DST change in between moves the end by an hour
        case g.WaitNode(seconds=seconds):
            return seconds, seconds
        case g.WaitUntilNode(weekday=weekday):
            return 0, WEEK if weekday is not None else DAY
        case g.WaitForEventNode(timeout_seconds=timeout) if label == "timeout":
            return timeout, timeout
    return 0, 0


def ready_scenarios(journey: g.CompiledJourney) -> list[Ready]:
    """The scenarios a journey suggests; none when no trigger is an event (a schedule or a
    condition enters people without one)."""
    trigger = next((t for t in journey.triggers if isinstance(t, m.EventTrigger)), None)
    if trigger is None:
        return []
    enter = ReadyEvent(timedelta(0), trigger.event, satisfying(trigger.where))
    found = [Ready("nothing", f"enters ({trigger.event}) and does nothing more", (enter,))]
    for goal in journey.goals:
        if goal.event is not None:
            after = min(GOAL_AFTER, timedelta(seconds=goal.within_seconds) / 2)
            found.append(Ready(f"goal:{goal.name}", f"enters and reaches the goal “{goal.name}” ({goal.event})",
                               (enter, ReadyEvent(after, goal.event, satisfying(goal.where)))))
    reach = reach_times(journey)
    for node in journey.nodes.values():
        if isinstance(node, g.WaitForEventNode) and node.id in reach:
            soonest, latest = reach[node.id]
            deadline = soonest + node.timeout_seconds
            at = latest + HOUR if latest + HOUR < deadline else soonest + node.timeout_seconds // 2
            found.append(Ready(f"wait:{node.id}", f"enters, then {node.event} arrives while at @{node.id}",
                               (enter, ReadyEvent(timedelta(seconds=at), node.event, satisfying(node.where)))))
    for number, rule in enumerate(journey.exits, start=1):
        if isinstance(rule, m.ExitOnEvent):
            found.append(Ready(f"exit:{number}", f"enters, then leaves on {rule.event} (exit rule)",
                               (enter, ReadyEvent(EXIT_AFTER, rule.event, satisfying(rule.where)))))
    return found
