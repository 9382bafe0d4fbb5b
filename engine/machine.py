"""The per-user journey state machine: `advance(program, run, input, scope, ports)`.

Pure: it reads time only from `scope.now`, touches storage only through `Ports` (two questions
the transaction can answer: how many messages went out lately, and which coupon code is free),
and returns the new run state plus a list of effects for the caller to commit in one
transaction. A run moves through instantaneous steps (branches, splits, sends, updates) until
it reaches a wait or the end, so one call does all the work one input causes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from dsl import graph as g
from dsl.model import Entry

from .expressions import compile_expr, compile_predicate
from .scope import Scope
from .splits import pick_arm
from .timing import add_local_days, first_zone, next_local_time, quiet_hours_end

RunState: TypeAlias = Literal["active", "waiting", "completed", "exited"]
LIVE_STATES: frozenset[str] = frozenset({"active", "waiting"})
SECONDS_PER_DAY = 86_400
MESSAGE_CHANNELS = frozenset({"sms", "push"})  # what frequency caps and quiet hours apply to
# How long a `call webhook ... as name` step waits for the reply; the dispatcher's retries fit
# in it. After it, the result is {"status": "timeout"} and the run goes on.
WEBHOOK_REPLY_TIMEOUT = timedelta(hours=24)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Run:
    """One user's pass through one journey version. Plain values only: it is stored as columns."""

    key: str  # stable; every outbound key derives from it, so a replayed input cannot send twice
    user_key: str  # the user's stable id, for deterministic splits
    entered_at: datetime
    state: RunState = "active"
    step: str | None = None  # the node the run waits at
    waiting_since: datetime | None = None
    deadline: datetime | None = None
    results: Mapping[str, Any] = field(default_factory=dict)
    arms: Mapping[str, str] = field(default_factory=dict)  # split id -> arm id
    converted: frozenset[str] = frozenset()

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Start:
    """Enter the journey (trigger matched, audience held, re-entry allowed)."""


@dataclass(frozen=True)
class TimerDue:
    """The timer of the step the run waits at is due: a wait ends, a `wait for` times out, or a
    webhook's reply arrived (the dispatcher wakes the run early with the reply as `payload`)."""

    step: str
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class EventArrived:
    """An event matched the `wait for` at `step`."""

    step: str
    occurred_at: datetime


@dataclass(frozen=True)
class ExitRequested:
    reason: str


@dataclass(frozen=True)
class GoalReached:
    goal: str
    occurred_at: datetime


Input: TypeAlias = Start | TimerDue | EventArrived | ExitRequested | GoalReached


# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class ScheduleTimer:
    step: str
    due_at: datetime


@dataclass(frozen=True)
class CancelTimers:
    pass


@dataclass(frozen=True)
class CancelDeferred:
    """Cancel the run's messages still held for later (quiet hours): an exit rule or a goal's
    `then exit` ended the run, and what it was going to say no longer applies. Issued for a run
    that has already completed too, since a send that was the last step still waits in the
    outbox. An `exit` step does not cancel: it is the journey's own end, after its own sends."""

    reason: str


@dataclass(frozen=True)
class Outbound:
    """A row for the outbox. `key` is the idempotency key: the same run and step, the same key."""

    key: str
    step: str
    channel: str  # sms, push, webhook, coupon
    payload: Mapping[str, Any]
    send_at: datetime
    status: Literal["pending", "sent", "suppressed"]
    reason: str | None = None


@dataclass(frozen=True)
class ProfileUpdate:
    field: tuple[str, ...]
    op: Literal["=", "+=", "-="]
    value: Any


@dataclass(frozen=True)
class TagUpdate:
    action: Literal["add", "remove"]
    tag: str


@dataclass(frozen=True)
class Conversion:
    goal: str
    occurred_at: datetime


TraceKind: TypeAlias = Literal[
    "entered", "moved", "waiting", "split", "suppressed", "deferred", "coupon_empty", "converted",
    "exited", "completed", "ignored", "cancelled",
]


@dataclass(frozen=True)
class Trace:
    """One line of the run's story, for `--trace`, step counters and the builder's preview."""

    kind: TraceKind
    step: str | None
    detail: str = ""


Effect: TypeAlias = (
    ScheduleTimer | CancelTimers | CancelDeferred | Outbound | ProfileUpdate | TagUpdate | Conversion | Trace
)


class Ports(Protocol):
    """What a transition may ask of the transaction it runs in."""

    def sent_count(self, channel: str | None, since: datetime) -> int:
        """Messages (any journey) already queued or sent to this user since `since`; None = all channels."""
        ...

    def claim_coupon(self, pool: str, key: str) -> Mapping[str, Any] | None:
        """Give this user a free code from `pool` for idempotency key `key` (the same key gets the
        same code back), or None when the pool is dry."""
        ...


# --------------------------------------------------------------------------- program


Evaluator: TypeAlias = Callable[[Scope], Any]
Predicate: TypeAlias = Callable[[Scope], bool]


class Program:
    """A compiled journey with every expression it runs turned into a closure, once per version."""

    def __init__(self, key: str, journey: g.CompiledJourney, installation_zone: str | None = None,
                 forced_arms: Mapping[str, int] | None = None) -> None:
        self.key = key  # the journey's stable name; random splits hash it with the user's key
        self.forced_arms: Mapping[str, int] = forced_arms or {}  # split id -> arm index; simulations only
        self.journey = journey
        self.zone_default = journey.timezone
        self.installation_zone = installation_zone
        self.branches: dict[str, list[tuple[Predicate, str]]] = {}
        self.values: dict[str, Evaluator] = {}
        for node in journey.nodes.values():
            if isinstance(node, g.BranchNode):
                self.branches[node.id] = [(compile_predicate(c), t) for c, t in node.conditions]
            elif isinstance(node, g.UpdateNode):
                self.values[node.id] = compile_expr(node.value)
            elif isinstance(node, g.WebhookNode) and node.body is not None:
                self.values[node.id] = compile_expr(node.body)
        self.goals = {goal.name: goal for goal in journey.goals}
        quiet = journey.quiet_hours
        self.quiet: tuple[time, time] | None = (
            (time(quiet.start.hour, quiet.start.minute), time(quiet.end.hour, quiet.end.minute)) if quiet else None
        )


# --------------------------------------------------------------------------- transitions


def may_enter(policy: Entry, last_entered_at: datetime | None, has_live_run: bool, now: datetime) -> bool:
    """The re-entry policy. Whatever it says, a user never has two live runs of one journey."""
    if has_live_run:
        return False
    if last_entered_at is None or policy.mode == "always":
        return True
    if policy.mode == "once_every":
        return now - last_entered_at >= timedelta(seconds=policy.every_seconds or 0)
    return False


_Frozen = TypeVar("_Frozen", Run, Scope)


def _replaced(value: _Frozen, **changes: Any) -> _Frozen:
    """`dataclasses.replace` for `Run` and `Scope`, which have no `__post_init__` and no field
    left out of `__init__`, so that copying the fields is all `replace` does for them: at a
    fifth of its cost, which was a tenth of a timer's transition (it reads the fields anew and
    calls `__init__` with keywords every time)."""
    copy = object.__new__(type(value))
    copy.__dict__.update(value.__dict__, **changes)
    return copy


class _Walk:
    """The mutable working state of one `advance` call."""

    def __init__(self, program: Program, run: Run, scope: Scope, ports: Ports) -> None:
        self.program = program
        self.run = run
        self.scope = scope
        self.ports = ports
        self.effects: list[Effect] = []
        self.sent_here: list[str] = []  # channels messaged in this call, for caps

    @property
    def now(self) -> datetime:
        return self.scope.now

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def key(self, step: str) -> str:
        return f"{self.run.key}/{step}"

    def zone(self) -> tzinfo:
        """The user's zone; a missing or unknown one falls back to the journey's, then the
        installation's, then UTC."""
        return first_zone(self.scope.user.get("timezone"), self.program.zone_default, self.program.installation_zone)

    def goto(self, target: str) -> None:
        """Run instantaneous steps from `target` until the run waits or ends."""
        nodes = self.program.journey.nodes
        while True:
            if target == g.END:
                self.finish("completed", None, "reached the end")
                return
            node = nodes[target]
            self.emit(Trace("moved", node.id))
            next_target = self.execute(node)
            if next_target is None:
                return
            target = next_target

    def wait(self, node_id: str, deadline: datetime) -> None:
        self.run = _replaced(self.run, state="waiting", step=node_id, waiting_since=self.now, deadline=deadline)
        self.emit(ScheduleTimer(node_id, deadline))
        self.emit(Trace("waiting", node_id, f"until {deadline.isoformat()}"))

    def exit(self, reason: str) -> None:
        """End the run from outside its steps (an exit rule, a goal's `then exit`) and cancel
        what it still holds back; a run that has already ended only loses what it holds."""
        if self.run.live:
            self.emit(CancelTimers())
            self.finish("exited", self.run.step, reason)
        self.emit(CancelDeferred(reason))

    def finish(self, state: Literal["completed", "exited"], step: str | None, why: str) -> None:
        self.run = _replaced(self.run, state=state, step=step, waiting_since=None, deadline=None)
        self.emit(Trace(state, step, why))

    def execute(self, node: g.Node) -> str | None:
        """Do one node; the id to go to next, or None if the run now waits or has ended."""
        match node:
            case g.WaitNode(seconds=seconds, calendar=True):
                self.wait(node.id, add_local_days(self.now, seconds // SECONDS_PER_DAY, self.zone()))
                return None
            case g.WaitNode(seconds=seconds):
                self.wait(node.id, self.now + timedelta(seconds=seconds))
                return None
            case g.WaitUntilNode(hour=hour, minute=minute, weekday=weekday):
                self.wait(node.id, next_local_time(self.now, time(hour, minute), self.zone(), weekday))
                return None
            case g.WaitForEventNode(timeout_seconds=timeout):
                self.wait(node.id, self.now + timedelta(seconds=timeout))
                return None
            case g.BranchNode(otherwise=otherwise):
                for predicate, target in self.program.branches[node.id]:
                    if predicate(self.scope):
                        return target
                return otherwise
            case g.SplitNode(arms=arms):
                arm = pick_arm(arms, self.run.user_key, self.program.key, node.id, self.program.forced_arms)
                self.run = _replaced(self.run, arms={**self.run.arms, node.id: arm.id})
                self.emit(Trace("split", node.id, arm.id + (" (control)" if arm.control else "")))
                return arm.target
            case g.SendNode():
                self.send(node)
            case g.CouponNode(pool=pool, result=result):
                self.coupon(node.id, pool, result)
            case g.WebhookNode(url=url, result=result):
                body = self.program.values[node.id](self.scope) if node.id in self.program.values else None
                payload = {"url": url, "body": body, "await_reply": bool(result)}
                self.emit(Outbound(self.key(node.id), node.id, "webhook", payload, self.now, "pending"))
                if result:
                    # Later steps read the reply: wait here until the dispatcher hands it over
                    # (it wakes this step's timer early), or give up at the deadline.
                    self.wait(node.id, self.now + WEBHOOK_REPLY_TIMEOUT)
                    return None
            case g.UpdateNode(field=path, op=op):
                value = self.program.values[node.id](self.scope)
                self.emit(ProfileUpdate(path, op, value))
                self.scope = _replaced(self.scope, user=apply_update(self.scope.user, path, op, value))
            case g.TagNode(action=action, tag=tag):
                self.emit(TagUpdate("add" if action == "add" else "remove", tag))
                self.scope = _replaced(self.scope, user=apply_tag(self.scope.user, action, tag))
            case g.ExitNode():
                self.emit(CancelTimers())
                self.finish("exited", node.id, "exit step")
                return None
        return getattr(node, "next", None)

    def set_result(self, name: str, value: Any) -> None:
        self.run = _replaced(self.run, results={**self.run.results, name: value})
        self.scope = _replaced(self.scope, results=self.run.results)

    def coupon(self, step: str, pool: str, result: str | None) -> None:
        claimed = self.ports.claim_coupon(pool, self.key(step))
        if claimed is None:
            self.emit(Trace("coupon_empty", step, f"pool {pool} is empty"))
        else:
            self.emit(Outbound(self.key(step), step, "coupon", {"pool": pool, **claimed}, self.now, "sent"))
        if result:
            self.set_result(result, dict(claimed) if claimed is not None else None)

    def capped_by(self, channel: str) -> str | None:
        for cap in self.program.journey.caps:
            if cap.channel not in (None, channel):
                continue
            since = self.now - timedelta(seconds=cap.per_seconds)
            here = sum(1 for c in self.sent_here if cap.channel in (None, c))
            if self.ports.sent_count(cap.channel, since) + here >= cap.count:
                scope = f"{cap.channel} " if cap.channel else ""
                return f"frequency cap: {cap.count} {scope}message(s) per {cap.per_seconds}s"
        return None

    def send(self, node: g.SendNode) -> None:
        payload: dict[str, Any] = {"text": node.text, "template": node.template, "title": node.title,
                                   "results": dict(self.run.results)}
        capped = self.capped_by(node.channel)
        if capped:
            self.emit(Outbound(self.key(node.id), node.id, node.channel, payload, self.now, "suppressed", capped))
            self.emit(Trace("suppressed", node.id, capped))
            return
        send_at = self.now
        if self.program.quiet is not None:
            send_at = quiet_hours_end(self.now, *self.program.quiet, self.zone())
            if send_at != self.now:
                self.emit(Trace("deferred", node.id, f"quiet hours: sent at {send_at.isoformat()}"))
        self.sent_here.append(node.channel)
        self.emit(Outbound(self.key(node.id), node.id, node.channel, payload, send_at, "pending"))


def apply_update(user: Mapping[str, Any], path: tuple[str, ...], op: str, value: Any) -> dict[str, Any]:
    """The profile after `update user.<path> <op> value`; += and -= treat a missing field as 0."""
    updated = dict(user)
    target = updated
    for part in path[:-1]:
        inner = target.get(part)
        target[part] = dict(inner) if isinstance(inner, Mapping) else {}
        target = target[part]
    last = path[-1]
    if op == "=":
        target[last] = value
        return updated
    current = target.get(last)
    base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
    amount = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
    target[last] = base + amount if op == "+=" else base - amount
    return updated


def apply_tag(user: Mapping[str, Any], action: str, tag: str) -> dict[str, Any]:
    tags = [t for t in user.get("tags") or [] if t != tag]
    if action == "add":
        tags.append(tag)
    return {**user, "tags": tags}


def advance(program: Program, run: Run, given: Input, scope: Scope, ports: Ports) -> tuple[Run, list[Effect]]:
    """Apply one input to one run; returns the new run and the effects to commit with it.

    Inputs that do not apply to the run as it stands (a timer for a step it has left, an event
    for a wait it is not in) change nothing and say so in a trace: that is what makes a
    replayed or late input harmless.
    """
    walk = _Walk(program, run, _replaced(scope, results=run.results), ports)
    match given:
        case Start():
            walk.emit(Trace("entered", None, program.journey.start))
            walk.goto(program.journey.start)
        case TimerDue(step=step, payload=reply):
            node = program.journey.nodes.get(step)
            if not run.live or run.step != step or node is None:
                walk.emit(Trace("ignored", step, "timer for a step the run is not waiting at"))
            elif isinstance(node, g.WaitForEventNode):
                walk.emit(Trace("moved", step, "timeout"))
                walk.goto(node.on_timeout)
            elif isinstance(node, g.WebhookNode) and node.result:
                walk.set_result(node.result, dict(reply) if reply else {"status": "timeout"})
                walk.emit(Trace("moved", step, "reply" if reply else "no reply in time"))
                walk.goto(node.next)
            else:
                walk.goto(getattr(node, "next", g.END))
        case EventArrived(step=step, occurred_at=occurred_at):
            node = program.journey.nodes.get(step)
            waiting_since = run.waiting_since
            on_time = (waiting_since is None or occurred_at >= waiting_since) and (
                run.deadline is None or occurred_at <= run.deadline)
            if not run.live or run.step != step or not isinstance(node, g.WaitForEventNode) or not on_time:
                walk.emit(Trace("ignored", step, "event for a wait the run is not in, or outside its window"))
            else:
                walk.emit(CancelTimers())
                walk.emit(Trace("moved", step, "received"))
                walk.goto(node.on_received)
        case ExitRequested(reason=reason):
            walk.exit(reason)
        case GoalReached(goal=goal_name, occurred_at=occurred_at):
            goal = program.goals.get(goal_name)
            window_end = run.entered_at + timedelta(seconds=goal.within_seconds) if goal else run.entered_at
            if goal and goal_name not in run.converted and run.entered_at <= occurred_at <= window_end:
                walk.run = _replaced(walk.run, converted=run.converted | {goal_name})
                walk.emit(Conversion(goal_name, occurred_at))
                walk.emit(Trace("converted", run.step, goal_name))
                if goal.then_exit:
                    walk.exit(f"goal {goal_name} reached")
    return walk.run, walk.effects
