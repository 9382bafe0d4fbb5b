"""Semantic checks on a parsed journey: everything that is grammatical but cannot run.

All problems are collected and raised together as one `JourneyInvalid`, each located at the
offending node with a hint where the fix is obvious. A journey that passes here compiles.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import model as m
from . import templates
from .cron import CronError, parse_cron
from .durations import DAY
from .errors import Diagnostic, JourneyInvalid
from .formatter import format_expr
from .ids import walk_steps

# name -> number of arguments
FUNCTIONS: dict[str, int] = {
    "exists": 1,
    "lower": 1,
    "upper": 1,
    "len": 1,
    "days_since": 1,
    "now": 0,
}
RESERVED_ROOTS = frozenset({"user", "event", "journey"})
PERCENT_TOLERANCE = 1e-6

# Templates are only read here (`dsl.templates.check`: syntax, unsafe access, the bounds that
# constants break, the names used), never run: rendering happens in `actions/`, in the same
# bounded sandbox.


FIELD_TYPES = ("text", "number", "bool", "date", "list")


@dataclass(frozen=True)
class FieldSpec:
    """A profile trait or event property as the catalog describes it: its type (one of
    FIELD_TYPES) and the values it is known to take, so that editors can offer them."""

    type: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    """What exists outside the journey. None means unknown: that kind is not checked.

    `traits` (profile field -> spec) and `events` (event name -> property -> spec) are not
    checked against journeys (a new property may arrive before the catalog learns it); the
    builder reads them to offer fields of the right type."""

    templates: frozenset[str] | None = None
    coupon_pools: frozenset[str] | None = None
    traits: Mapping[str, FieldSpec] | None = None
    events: Mapping[str, Mapping[str, FieldSpec]] | None = None


class _Flow(NamedTuple):
    ends: bool  # every path through exits
    defines: frozenset[str]  # result names set on every path that goes on


class _Checker:
    def __init__(self, journey: m.Journey, lines: list[str], catalog: Catalog) -> None:
        self.journey = journey
        self.lines = lines
        self.catalog = catalog
        self.problems: list[Diagnostic] = []
        triggers = journey.triggers
        self.event_in_steps = bool(triggers) and all(isinstance(t, m.EventTrigger) for t in triggers)

    def error(self, loc: m.Loc, message: str, hint: str | None = None, width: int = 1) -> None:
        source = self.lines[loc.line - 1] if 0 < loc.line <= len(self.lines) else ""
        self.problems.append(Diagnostic(max(loc.line, 1), max(loc.column, 1), message, hint, source, width))

    # ------------------------------------------------------------------ expressions

    def expr(self, expr: m.Expr | None, scope: frozenset[str], event_ok: bool) -> None:
        """Check names, functions and literals in an expression."""
        if expr is None:
            return
        for node in _walk_expr(expr):
            if isinstance(node, m.Path):
                self.path(node, scope, event_ok)
            elif isinstance(node, m.Call):
                arity = FUNCTIONS.get(node.name)
                if arity is None:
                    self.error(node.loc, f"unknown function {node.name!r}",
                               f"the functions are {', '.join(sorted(FUNCTIONS))}", len(node.name))
                elif len(node.args) != arity:
                    plural = "s" if arity != 1 else ""
                    self.error(node.loc, f"{node.name}() takes {arity} argument{plural}, "
                               f"not {len(node.args)}", width=len(node.name))
            elif isinstance(node, m.History):
                if not node.event:
                    self.error(node.loc, "the event name is empty")
                self.expr(node.where, scope, event_ok=True)
                if node.window_seconds is not None and node.window_seconds <= 0:
                    self.error(node.loc, "the window must be longer than zero")

    def path(self, path: m.Path, scope: frozenset[str], event_ok: bool) -> None:
        root = path.root
        width = len(format_expr(path))
        if root == "event" and not event_ok:
            self.error(path.loc, "there is no event here",
                       "event.* is available in a `where` about an event, and in the steps of a "
                       "journey whose triggers are all events", width)
        elif root not in RESERVED_ROOTS and root not in scope:
            self.error(path.loc, f"unknown name {root!r}", _names_hint(scope, event_ok), width)
        elif root in ("user", "event") and len(path.parts) == 1:
            self.error(path.loc, f"{root} needs a field, as in {root}.name", width=width)

    def template_text(self, text: str, loc: m.Loc, scope: frozenset[str], what: str) -> None:
        try:
            checked = templates.check(text)
        except RecursionError:  # the template parser walks nested brackets and blocks recursively
            self.error(loc, f"{what}: the template nests too deeply to be read",
                       "it holds too many levels of brackets or blocks; split it up")
            return
        several_lines = "\n" in text
        for problem in checked.problems:
            where = f" (line {problem.line} of the template)" if several_lines else ""
            kind = "the template is refused" if problem.refused else "template error"
            self.error(loc, f"{what}: {kind}: {problem.message}{where}", problem.hint)
        allowed = scope | {"user"} | ({"event"} if self.event_in_steps else set())
        for name in sorted(checked.names - allowed):
            self.error(loc, f"{what}: unknown name {name!r} in the template",
                       _names_hint(scope, self.event_in_steps))

    # ------------------------------------------------------------------ settings

    def settings(self) -> None:
        journey = self.journey
        if not journey.triggers:
            self.error(journey.loc, "the journey has no trigger",
                       'add one, such as: trigger event "signup"')
        for trigger in journey.triggers:
            if isinstance(trigger, m.EventTrigger):
                self.event_name(trigger.event, trigger.loc)
                self.expr(trigger.where, frozenset(), event_ok=True)
            elif isinstance(trigger, m.ConditionTrigger):
                self.expr(trigger.condition, frozenset(), event_ok=False)
            elif isinstance(trigger, m.ScheduleTrigger):
                try:
                    parse_cron(trigger.cron)
                except CronError as error:
                    self.error(trigger.loc, f"bad schedule {trigger.cron!r}: {error}",
                               'for example "0 9 * * *" is every day at 09:00')
        if journey.audience is not None:
            self.expr(journey.audience.condition, frozenset(), event_ok=self.event_in_steps)
        entry = journey.entry
        if entry is not None and entry.mode == "once_every":
            self.positive(entry.every_seconds or 0, entry.loc, "the re-entry interval")
        for rule in journey.exits:
            if isinstance(rule, m.ExitOnEvent):
                self.event_name(rule.event, rule.loc)
                self.expr(rule.where, frozenset(), event_ok=True)
            else:
                self.expr(rule.condition, frozenset(), event_ok=False)
        seen_goals: dict[str, m.Goal] = {}
        for goal in journey.goals:
            if goal.name in seen_goals:
                self.error(goal.loc, f"goal {goal.name!r} is defined twice",
                           f"the first is on line {seen_goals[goal.name].loc.line}")
            seen_goals.setdefault(goal.name, goal)
            if goal.event is not None:
                self.event_name(goal.event, goal.loc)
            self.expr(goal.where, frozenset(), event_ok=goal.event is not None)
            self.positive(goal.within_seconds, goal.loc, "the goal's window")
        quiet = journey.quiet_hours
        if quiet is not None and quiet.start == quiet.end:
            self.error(quiet.loc, "quiet hours start and end at the same time")
        if journey.timezone is not None:
            try:
                ZoneInfo(journey.timezone.name)
            except (ZoneInfoNotFoundError, ValueError):
                self.error(journey.timezone.loc, f"unknown time zone {journey.timezone.name!r}",
                           'use an IANA name such as "Asia/Shanghai" or "Europe/Paris"')
        for cap in journey.caps:
            if cap.count < 1:
                self.error(cap.loc, "a frequency cap allows at least 1 message")
            self.positive(cap.per_seconds, cap.loc, "the cap's period")

    def event_name(self, name: str, loc: m.Loc) -> None:
        if not name.strip():
            self.error(loc, "the event name is empty")

    def positive(self, seconds: int, loc: m.Loc, what: str) -> None:
        if seconds <= 0:
            self.error(loc, f"{what} must be longer than zero")

    # ------------------------------------------------------------------ steps

    def block(self, steps: tuple[m.Step, ...], scope: frozenset[str]) -> _Flow:
        """Check a block: whether every path through it exits, and the result names it sets."""
        ends = False
        defined: frozenset[str] = frozenset()
        for step in steps:
            if ends:
                self.error(step.loc, "this step can never run: every path above it has exited",
                           "remove it, or the `exit` before it")
                break
            flow = self.step(step, scope)
            for name in sorted(flow.defines & scope):
                self.error(step.loc, f"the result name {name!r} is already set on this path",
                           "use another name (the same name is fine in separate branches)")
            ends, scope, defined = flow.ends, scope | flow.defines, defined | flow.defines
        return _Flow(ends, defined)

    @staticmethod
    def _join(flows: list[_Flow], complete: bool) -> _Flow:
        """The flow after a compound step whose branches rejoin. A result name is usable after it
        when every branch that reaches the rejoin sets it; branches that exit do not count."""
        if not complete:
            return _Flow(False, frozenset())
        through = [f.defines for f in flows if not f.ends]
        if not through:
            return _Flow(True, frozenset())
        return _Flow(False, frozenset.intersection(*through))

    def step(self, step: m.Step, scope: frozenset[str]) -> _Flow:
        event_ok = self.event_in_steps
        match step:
            case m.Wait(seconds=seconds, calendar=calendar):
                self.positive(seconds, step.loc, "the wait")
                if calendar and seconds % DAY:
                    self.error(step.loc, "a wait in calendar days counts whole days",
                               "write `wait 2 days`, or an exact length such as `wait 36h`")
            case m.WaitForEvent():
                self.event_name(step.event, step.loc)
                self.expr(step.where, scope, event_ok=True)
                self.positive(step.timeout_seconds, step.loc, "the timeout")
                missing = [n for n, b in (("received", step.received), ("timeout", step.timeout)) if b is None]
                if missing:
                    self.error(step.loc, f"this wait has no {' and no '.join(m + ':' for m in missing)} branch",
                               "a wait for an event needs both `received:` and `timeout:` "
                               "(write `pass` in a branch that does nothing)")
                branches = [b for b in (step.received, step.timeout) if b is not None]
                return self._join([self.block(b.steps, scope) for b in branches], complete=not missing)
            case m.If():
                flows = []
                for arm in step.arms:
                    self.expr(arm.condition, scope, event_ok)
                    flows.append(self.block(arm.steps, scope))
                if step.otherwise is not None:
                    flows.append(self.block(step.otherwise.steps, scope))
                return self._join(flows, complete=step.otherwise is not None)
            case m.Split():
                return self.split(step, scope)
            case m.Send():
                self.send(step, scope)
            case m.IssueCoupon(pool=pool):
                known = self.catalog.coupon_pools
                if known is not None and pool not in known:
                    self.error(step.loc, f"unknown coupon pool {pool!r}", _known_hint(known))
            case m.CallWebhook():
                self.webhook(step, scope)
            case m.UpdateProfile():
                self.update(step, scope)
            case m.Tag(tag=tag):
                if not tag.strip():
                    self.error(step.loc, "the tag is empty")
            case m.ExitStep():
                return _Flow(True, frozenset())
        return _Flow(False, frozenset(_results(step)))

    def split(self, step: m.Split, scope: frozenset[str]) -> _Flow:
        total = sum(arm.percent for arm in step.arms)
        if abs(total - 100) > PERCENT_TOLERANCE:
            self.error(step.loc, f"the split's percentages add up to {total:g}%, not 100%",
                       "adjust the branches so that they add up to 100%")
        controls = [arm for arm in step.arms if arm.control]
        for extra in controls[1:]:
            self.error(extra.loc, "a split has at most one control group")
        for arm in step.arms:
            if arm.percent <= 0:
                self.error(arm.loc, "a branch needs a share above 0%")
        return self._join([self.block(arm.steps, scope) for arm in step.arms], complete=True)

    def send(self, step: m.Send, scope: frozenset[str]) -> None:
        if step.title is not None and step.channel != "push":
            self.error(step.loc, f"a title is only for push messages, not {step.channel}")
        if step.template is not None:
            known = self.catalog.templates
            if known is not None and step.template not in known:
                self.error(step.loc, f"unknown template {step.template!r}", _known_hint(known))
        elif not (step.text or "").strip():
            self.error(step.loc, "the message is empty")
        else:
            self.template_text(step.text or "", step.loc, scope, "message")
        if step.title is not None:
            self.template_text(step.title, step.loc, scope, "title")

    def webhook(self, step: m.CallWebhook, scope: frozenset[str]) -> None:
        parts = urlsplit(step.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.error(step.loc, f"{step.url!r} is not an http(s) URL",
                       'write the whole address, as in "https://crm.example.com/points"')
        self.template_text(step.url, step.loc, scope, "URL")
        self.expr(step.body, scope, self.event_in_steps)

    def update(self, step: m.UpdateProfile, scope: frozenset[str]) -> None:
        parts = step.path.parts
        if parts[0] != "user" or len(parts) < 2:
            self.error(step.loc, "only the user's profile can be updated", "write user.<field>")
        elif parts[1:] == ("tags",):
            self.error(step.loc, "tags are changed with `add tag` and `remove tag`")
        value = step.value
        if step.op != "=" and isinstance(value, m.Lit) and (
            isinstance(value.value, bool) or not isinstance(value.value, int | float)
        ):
            self.error(step.loc, f"{step.op} needs a number")
        self.expr(value, scope, self.event_in_steps)

    # ------------------------------------------------------------------ whole journey

    def labels_and_results(self) -> None:
        seen: dict[str, m.Loc] = {}
        for step in walk_steps(self.journey.steps):
            labelled: list[tuple[str | None, m.Loc]] = [(step.label, step.loc)]
            if isinstance(step, m.Split):
                labelled += [(arm.label, arm.loc) for arm in step.arms]
            for label, loc in labelled:
                if label is None:
                    continue
                if label in seen:
                    self.error(loc, f"the label @{label} is used twice",
                               f"the first is on line {seen[label].line}; labels must be unique")
                seen.setdefault(label, loc)
            for name in _results(step):
                if name in RESERVED_ROOTS:
                    self.error(step.loc, f"{name!r} is reserved and cannot name a result")

    def run(self) -> list[Diagnostic]:
        self.settings()
        self.labels_and_results()
        self.block(self.journey.steps, frozenset())
        return self.problems


def _walk_expr(expr: m.Expr) -> Iterator[m.Expr]:
    """The expression and its sub-expressions, except inside `count of` (checked apart)."""
    yield expr
    children: tuple[m.Expr, ...] = ()
    if isinstance(expr, m.Unary):
        children = (expr.operand,)
    elif isinstance(expr, m.Binary | m.Compare):
        children = (expr.left, expr.right)
    elif isinstance(expr, m.Call | m.ListExpr):
        children = expr.args if isinstance(expr, m.Call) else expr.items
    elif isinstance(expr, m.ObjectExpr):
        children = tuple(v for _, v in expr.items)
    for child in children:
        yield from _walk_expr(child)


def _results(step: m.Step) -> tuple[str, ...]:
    if isinstance(step, m.IssueCoupon | m.CallWebhook) and step.result:
        return (step.result,)
    return ()


def _names_hint(scope: frozenset[str], event_ok: bool) -> str:
    names = ["user", *(["event"] if event_ok else []), *sorted(scope)]
    return f"names available here: {', '.join(names)}"


def _known_hint(known: frozenset[str]) -> str:
    if not known:
        return "the catalog lists none"
    shown = sorted(known)[:8]
    return f"known: {', '.join(shown)}{', ...' if len(known) > 8 else ''}"


def validate(journey: m.Journey, source: str = "", catalog: Catalog | None = None) -> None:
    """Raise `JourneyInvalid` with every semantic problem; `source` gives the caret lines."""
    problems = _Checker(journey, source.split("\n"), catalog or Catalog()).run()
    if problems:
        raise JourneyInvalid(problems)
