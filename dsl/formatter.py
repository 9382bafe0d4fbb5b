"""Model to canonical text.

Canonical means: two-space indentation, settings in a fixed order, one blank line between
settings and steps, blank lines between steps kept where the author put them, the minimum of
parentheses, durations in days/hours/minutes/seconds. `format_journey(parse(t))` is a fixed
point, and `parse(format_journey(j)) == j` for every journey the parser can produce.
"""

from __future__ import annotations

import json
from decimal import Decimal

from . import model as m
from .durations import DAY, format_calendar_days, format_duration

INDENT = "  "

# Binding strength of each expression form; a child looser than its context gets parentheses.
_OR, _AND, _NOT, _COMPARE, _ADD, _MUL, _UNARY, _ATOM = range(1, 9)
_BINARY_PRECEDENCE = {"or": _OR, "and": _AND, "+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL}


def format_string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # A lone surrogate (from a "\ud800" escape) cannot be written as UTF-8: keep it escaped.
    return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def format_number(value: int | float) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def _precedence(expr: m.Expr) -> int:
    if isinstance(expr, m.Binary):
        return _BINARY_PRECEDENCE[expr.op]
    if isinstance(expr, m.Compare):
        return _COMPARE
    if isinstance(expr, m.Unary):
        return _NOT if expr.op == "not" else _UNARY
    if isinstance(expr, m.Lit) and isinstance(expr.value, int | float) and not isinstance(expr.value, bool):
        return _UNARY if expr.value < 0 or str(expr.value).startswith("-") else _ATOM
    return _ATOM


def _wrap(expr: m.Expr, needs_parens: bool) -> str:
    text = format_expr(expr)
    return f"({text})" if needs_parens else text


def format_expr(expr: m.Expr) -> str:
    if isinstance(expr, m.Lit):
        value = expr.value
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return format_string(value)
        return format_number(value)
    if isinstance(expr, m.Dur):
        return format_duration(expr.seconds)
    if isinstance(expr, m.Path):
        return ".".join(expr.parts)
    if isinstance(expr, m.Call):
        return f"{expr.name}({', '.join(format_expr(a) for a in expr.args)})"
    if isinstance(expr, m.ListExpr):
        return f"[{', '.join(format_expr(i) for i in expr.items)}]"
    if isinstance(expr, m.ObjectExpr):
        return "{" + ", ".join(f"{format_string(k)}: {format_expr(v)}" for k, v in expr.items) + "}"
    if isinstance(expr, m.History):
        where = f" where {format_expr(expr.where)}" if expr.where is not None else ""
        window = "ever" if expr.window_seconds is None else f"within {format_duration(expr.window_seconds)}"
        return f"count of {format_string(expr.event)}{where} {window}"
    if isinstance(expr, m.Unary):
        if expr.op == "not":
            return f"not {_wrap(expr.operand, _precedence(expr.operand) < _NOT)}"
        return f"-{_wrap(expr.operand, _precedence(expr.operand) < _UNARY)}"
    if isinstance(expr, m.Compare):
        left = _wrap(expr.left, _precedence(expr.left) <= _COMPARE)
        right = _wrap(expr.right, _precedence(expr.right) <= _COMPARE)
        return f"{left} {expr.op} {right}"
    own = _BINARY_PRECEDENCE[expr.op]
    left = _wrap(expr.left, _precedence(expr.left) < own)
    right = _wrap(expr.right, _precedence(expr.right) <= own)
    return f"{left} {expr.op} {right}"


def _where(expr: m.Expr | None) -> str:
    return "" if expr is None else f" where {format_expr(expr)}"


def _zone(zone: m.ScheduleZone | None) -> str:
    """` in user zone` only when the author wrote it: the default is not spelt out, so a
    journey written without the clause reads back the same."""
    return "" if zone is None else f" in {zone} zone"


def _then_exit(goal: m.Goal) -> str:
    return " then exit" if goal.then_exit else ""


def format_wait(wait: m.Wait) -> str:
    """`2d` for an exact wait, `2 days` for a calendar one (whose seconds are whole days)."""
    if wait.calendar:
        return format_calendar_days(wait.seconds // DAY)
    return format_duration(wait.seconds)


def format_setting(setting: m.Setting) -> str:
    match setting:
        case m.EventTrigger(event=event, where=where):
            return f"trigger event {format_string(event)}{_where(where)}"
        case m.ConditionTrigger(condition=condition):
            return f"trigger when {format_expr(condition)}"
        case m.ScheduleTrigger(cron=cron, zone=zone):
            return f"trigger schedule {format_string(cron)}{_zone(zone)}"
        case m.ApiTrigger():
            return "trigger api"
        case m.Audience(condition=condition):
            return f"audience {format_expr(condition)}"
        case m.Entry(mode="once_every", every_seconds=every):
            return f"entry once every {format_duration(every or 0)}"
        case m.Entry(mode=mode):
            return f"entry {mode}"
        case m.ExitOnEvent(event=event, where=where):
            return f"exit on event {format_string(event)}{_where(where)}"
        case m.ExitWhen(condition=condition):
            return f"exit when {format_expr(condition)}"
        case m.Goal(name=name, event=None, where=where, within_seconds=within):
            assert where is not None
            return (f"goal {format_string(name)} when {format_expr(where)} within {format_duration(within)}"
                    f"{_then_exit(setting)}")
        case m.Goal(name=name, event=str(event), where=where, within_seconds=within):
            return (f"goal {format_string(name)} on event {format_string(event)}{_where(where)}"
                    f" within {format_duration(within)}{_then_exit(setting)}")
        case m.QuietHours(start=start, end=end):
            return f"quiet hours {start}-{end}"
        case m.TimeZone(name=name):
            return f"timezone {format_string(name)}"
        case m.FrequencyCap(count=count, per_seconds=per, channel=channel):
            noun = "message" if count == 1 else "messages"
            scope = f"{channel} " if channel else ""
            return f"frequency cap {scope}{count} {noun} per {format_duration(per)}"
    raise TypeError(f"not a setting: {setting!r}")


def format_percent(percent: float) -> str:
    return f"{int(percent)}%" if percent.is_integer() else format_number(percent) + "%"


def step_header(step: m.Step) -> str:
    """The first line of a step, without label or indentation: also used by the builder."""
    match step:
        case m.Wait():
            return f"wait {format_wait(step)}"
        case m.WaitUntil(time=time, weekday=weekday):
            return f"wait until {weekday + ' ' if weekday else ''}{time}"
        case m.WaitForEvent(event=event, where=where, timeout_seconds=timeout):
            return f"wait for event {format_string(event)}{_where(where)} up to {format_duration(timeout)}:"
        case m.If(arms=arms):
            return f"if {format_expr(arms[0].condition)}:"
        case m.Split(name=name):
            return f"split {format_string(name)}:"
        case m.Send(channel=channel, text=text, template=template, title=title):
            what = format_string(text) if text is not None else f"template {format_string(template or '')}"
            suffix = f" title {format_string(title)}" if title is not None else ""
            return f"send {channel} {what}{suffix}"
        case m.IssueCoupon(pool=pool, result=result):
            return f"issue coupon {format_string(pool)}{f' as {result}' if result else ''}"
        case m.CallWebhook(url=url, body=body, result=result):
            with_body = f" with {format_expr(body)}" if body is not None else ""
            return f"call webhook {format_string(url)}{with_body}{f' as {result}' if result else ''}"
        case m.UpdateProfile(path=path, op=op, value=value):
            return f"update {format_expr(path)} {op} {format_expr(value)}"
        case m.Tag(action=action, tag=tag):
            return f"{action} tag {format_string(tag)}"
        case m.ExitStep():
            return "exit"
        case m.Pass():
            return "pass"
    raise TypeError(f"not a step: {step!r}")


class _Printer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def node(self, depth: int, text: str, comments: m.Comments) -> None:
        pad = INDENT * depth
        self.lines.extend(f"{pad}#{c}" for c in comments.leading)
        trailing = f"  #{comments.trailing}" if comments.trailing is not None else ""
        self.lines.append(f"{pad}{text}{trailing}")

    def block(self, depth: int, steps: tuple[m.Step, ...]) -> None:
        for index, step in enumerate(steps):
            if index and step.blank_before:
                self.lines.append("")
            self.step(depth, step)

    def step(self, depth: int, step: m.Step) -> None:
        label = f"@{step.label} " if step.label else ""
        self.node(depth, label + step_header(step), step.comments)
        if isinstance(step, m.If):
            self.block(depth + 1, step.arms[0].steps)
            for arm in step.arms[1:]:
                self.node(depth, f"elif {format_expr(arm.condition)}:", arm.comments)
                self.block(depth + 1, arm.steps)
            if step.otherwise is not None:
                self.node(depth, "else:", step.otherwise.comments)
                self.block(depth + 1, step.otherwise.steps)
        elif isinstance(step, m.Split):
            for split_arm in step.arms:
                arm_label = f"@{split_arm.label} " if split_arm.label else ""
                control = " control" if split_arm.control else ""
                self.node(depth + 1, f"{arm_label}{format_percent(split_arm.percent)}{control}:",
                          split_arm.comments)
                self.block(depth + 2, split_arm.steps)
        elif isinstance(step, m.WaitForEvent):
            for outcome, branch in (("received", step.received), ("timeout", step.timeout)):
                if branch is not None:
                    self.node(depth + 1, f"{outcome}:", branch.comments)
                    self.block(depth + 2, branch.steps)


def format_journey(journey: m.Journey) -> str:
    """Canonical text of a journey, ending with a newline."""
    printer = _Printer()
    printer.node(0, f"journey {format_string(journey.name)}", journey.comments)
    settings = journey.settings()
    for setting in settings:
        printer.node(1, format_setting(setting), setting.comments)
    if settings and journey.steps:
        printer.lines.append("")
    printer.block(1, journey.steps)
    printer.lines.extend(f"#{c}" for c in journey.end_comments)
    return "\n".join(printer.lines) + "\n"
