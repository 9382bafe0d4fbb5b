"""The compiled journey: a graph of nodes keyed by stable step id, which the engine runs.

Nodes name their successors by id (`next`, branch targets); `END` means the run is done.
Block structure is gone: an `if` is a `BranchNode` whose arms point into the graph and whose
arms all rejoin at the step after it. `pass` steps compile to nothing. Expressions stay model
`Expr` nodes, for the engine to compile into predicates once per journey version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, TypeAlias

from . import model as m
from .formatter import format_expr

END = "__end__"


@dataclass(frozen=True)
class WaitNode:
    id: str
    line: int
    seconds: int
    next: str
    calendar: bool = False  # `wait N days`: N local days (seconds // 86400), not N x 24 hours


@dataclass(frozen=True)
class WaitUntilNode:
    id: str
    line: int
    hour: int
    minute: int
    weekday: int | None  # 0 = Monday, as `datetime.weekday()`
    next: str


@dataclass(frozen=True)
class WaitForEventNode:
    id: str
    line: int
    event: str
    where: m.Expr | None
    timeout_seconds: int
    on_received: str
    on_timeout: str


@dataclass(frozen=True)
class BranchNode:
    """`if`/`elif`/`else`: the first true condition wins; `otherwise` when none is."""

    id: str
    line: int
    conditions: tuple[tuple[m.Expr, str], ...]
    otherwise: str


@dataclass(frozen=True)
class SplitArmSpec:
    id: str
    percent: float
    control: bool
    target: str


@dataclass(frozen=True)
class SplitNode:
    id: str
    line: int
    name: str
    arms: tuple[SplitArmSpec, ...]


@dataclass(frozen=True)
class SendNode:
    id: str
    line: int
    channel: str
    text: str | None
    template: str | None
    title: str | None
    next: str


@dataclass(frozen=True)
class CouponNode:
    id: str
    line: int
    pool: str
    result: str | None
    next: str


@dataclass(frozen=True)
class WebhookNode:
    id: str
    line: int
    url: str
    body: m.ObjectExpr | None
    result: str | None
    next: str


@dataclass(frozen=True)
class UpdateNode:
    id: str
    line: int
    field: tuple[str, ...]  # the path below `user`
    op: m.UpdateOp
    value: m.Expr
    next: str


@dataclass(frozen=True)
class TagNode:
    id: str
    line: int
    action: str
    tag: str
    next: str


@dataclass(frozen=True)
class ExitNode:
    id: str
    line: int


Node: TypeAlias = (
    WaitNode | WaitUntilNode | WaitForEventNode | BranchNode | SplitNode | SendNode | CouponNode
    | WebhookNode | UpdateNode | TagNode | ExitNode
)

NODE_KINDS: dict[type, str] = {
    WaitNode: "wait", WaitUntilNode: "wait_until", WaitForEventNode: "wait_for_event",
    BranchNode: "branch", SplitNode: "split", SendNode: "send", CouponNode: "coupon",
    WebhookNode: "webhook", UpdateNode: "update", TagNode: "tag", ExitNode: "exit",
}


def successors(node: Node) -> Iterator[tuple[str, str]]:
    """(label, target id) for each edge leaving a node."""
    if isinstance(node, WaitForEventNode):
        yield "received", node.on_received
        yield "timeout", node.on_timeout
    elif isinstance(node, BranchNode):
        for condition, target in node.conditions:
            yield format_expr(condition), target
        yield "else", node.otherwise
    elif isinstance(node, SplitNode):
        for arm in node.arms:
            yield f"{arm.percent:g}%{' control' if arm.control else ''}", arm.target
    elif isinstance(node, ExitNode):
        yield "exit", END
    else:
        yield "", node.next


@dataclass(frozen=True)
class CompiledJourney:
    """Everything the engine needs to run a journey version; no text, no parsing left."""

    name: str
    start: str
    nodes: dict[str, Node]
    triggers: tuple[m.Trigger, ...]  # a schedule's `zone` is always set here: the default applied
    audience: m.Expr | None
    entry: m.Entry
    exits: tuple[m.ExitRule, ...]
    goals: tuple[m.Goal, ...]
    quiet_hours: m.QuietHours | None
    timezone: str | None
    caps: tuple[m.FrequencyCap, ...]

    @property
    def event_names(self) -> frozenset[str]:
        """Every event this journey reacts to: the matcher's index key."""
        names = {t.event for t in self.triggers if isinstance(t, m.EventTrigger)}
        names |= {e.event for e in self.exits if isinstance(e, m.ExitOnEvent)}
        names |= {g.event for g in self.goals if g.event is not None}
        names |= {n.event for n in self.nodes.values() if isinstance(n, WaitForEventNode)}
        return frozenset(names)

    def edges(self) -> Iterator[tuple[str, str, str]]:
        yield "start", self.start, ""
        for node in self.nodes.values():
            for label, target in successors(node):
                yield node.id, target, label

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, with expressions as DSL text, for tools and people."""
        return {
            "name": self.name,
            "start": self.start,
            "settings": {
                "triggers": [_plain(t) for t in self.triggers],
                "audience": _plain(self.audience),
                "entry": _plain(self.entry),
                "exits": [_plain(e) for e in self.exits],
                "goals": [_plain(g) for g in self.goals],
                "quiet_hours": _plain(self.quiet_hours),
                "timezone": self.timezone,
                "caps": [_plain(c) for c in self.caps],
            },
            "nodes": [{"kind": NODE_KINDS[type(n)], **_plain(n)} for n in self.nodes.values()],
            "edges": [{"from": a, "to": b, "label": label} for a, b, label in self.edges()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_dot(self) -> str:
        """Graphviz source: one box per step, labelled edges for branches."""
        out = [f"digraph {json.dumps(self.name, ensure_ascii=False)} {{",
               "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];',
               '  start [shape=circle, label="start"];',
               f'  {json.dumps(END)} [shape=doublecircle, label="end"];']
        for node in self.nodes.values():
            label = f"{node.id}\n{NODE_KINDS[type(node)]}"  # json.dumps writes the \n DOT wants
            out.append(f"  {json.dumps(node.id)} [label={json.dumps(label)}];")
        for source, target, label in self.edges():
            attrs = f" [label={json.dumps(label, ensure_ascii=False)}]" if label else ""
            out.append(f"  {json.dumps(source)} -> {json.dumps(target)}{attrs};")
        out.append("}")
        return "\n".join(out) + "\n"


_EXPRESSIONS = (m.Lit, m.Dur, m.Path, m.Call, m.Unary, m.Binary, m.Compare, m.ListExpr, m.ObjectExpr,
                m.History)


def _plain(value: Any) -> Any:
    if isinstance(value, _EXPRESSIONS):
        return format_expr(value)
    if isinstance(value, m.Comments | m.Loc):
        return None
    if isinstance(value, m.TimeOfDay):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__} if isinstance(value, m.EventTrigger | m.ConditionTrigger |
                                                            m.ScheduleTrigger | m.ApiTrigger |
                                                            m.ExitOnEvent | m.ExitWhen) else {}
        for f in fields(value):
            item = _plain(getattr(value, f.name))
            if f.name not in ("comments", "loc", "blank_before"):
                out[f.name] = item
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
