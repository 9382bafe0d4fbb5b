"""The side panels' forms, to and from the DSL model.

A form is turned into the step's (or the settings') DSL line, and that line is read by the
real parser inside a small stand-in journey: the builder has no second grammar to drift from
the first, and a typo in a condition gets the parser's own message, pinned to the field it
came from. Text fields are written as DSL strings (quoted and escaped by the formatter);
conditions, durations and values are DSL themselves, which is what lets a marketer write
`user.total_spend >= 1000` in a form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from dsl import Diagnostic, JourneyError, parse, validate
from dsl import model as m
from dsl.durations import DAY, format_duration
from dsl.formatter import format_expr, format_percent, format_setting, format_string

from .edits import BARE_PASS, replace_settings, with_blocks
from .palette import kind_of

LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CALENDAR_FIELD = re.compile(r"([0-9]+)[ \t]*(d|days?|w|weeks?)?")
_MAX_WEEK_DIGITS = 6
_PREFIX = 'journey "form"\n  trigger api\n\n'
_STEP_LINE = 4  # the line of the stand-in journey where the step's header goes
_INDENT = "  "
SAMPLE_PREFIX = "sample_"  # the preview's sample profile and event: not part of the step
ROWS = ("trigger", "exit", "goal", "cap")  # settings that may repeat: one form row each, plus a spare


@dataclass(frozen=True)
class FieldError:
    field: str  # the form field's name; "" for the form as a whole
    message: str
    hint: str | None = None


class _Line:
    """A DSL line being assembled from form fields, remembering which columns came from which
    field, so a syntax error's column can be traced back to the field.

    `home` is the field a problem about the whole line belongs to (the validator points at a
    line's first word); `topics` sends such a problem elsewhere when its message names what
    another field holds ("the goal's window" is the Within field, not the event)."""

    def __init__(self, home: str = "") -> None:
        self.text = ""
        self.spans: list[tuple[str, int, int]] = []
        self.home = home
        self.topics: list[tuple[str, str]] = []  # (word in a message, field)

    def add(self, text: str, field: str | None = None, about: tuple[str, ...] = ()) -> _Line:
        if field is not None:
            self.spans.append((field, len(self.text), len(self.text) + len(text)))
            self.topics += [(word, field) for word in about]
        self.text += text
        return self

    def string(self, value: str, field: str) -> _Line:
        return self.add(format_string(value), field)

    def grouped(self, condition: str, field: str) -> _Line:
        """A condition in brackets (which the model does not keep), so a condition cut short
        stops at its own bracket instead of reading on into the line's next words
        (`where event.amount > within 14d` would blame the Within field)."""
        return self.add("(").add(condition, field).add(")")

    def field_at(self, column: int) -> str:
        """The field at 0-based `column` of the line (the nearest one before it otherwise)."""
        best = ""
        for name, start, end in self.spans:
            if start <= column <= end:
                return name
            if start <= column:
                best = name
        return best

    def field_for(self, column: int, message: str) -> str:
        """The field a problem at 0-based `column` is about: the one written there, or, for a
        problem with the whole line, the one its message talks about, else `home`."""
        found = self.field_at(column)
        if found:
            return found
        return next((field for word, field in self.topics if word in message), self.home)


_LINE_TALK = (
    (re.compile(r"the first is on line \d+"), "the first is in another row"),
    (re.compile(r"\b(the )?end of (the )?line\b"), "the end"),
    (re.compile(r",? ?\(?\b(on |at )?line \d+(, column \d+)?\)?"), ""),
    (re.compile(r",? ?\(?\b(at )?column \d+\)?"), ""),
)


def plain(message: str) -> str:
    """A parser or validator message as a form shows it: a form has no lines or columns (the
    DSL panel, which has, keeps the messages whole)."""
    for pattern, words in _LINE_TALK:
        message = pattern.sub(words, message)
    return message


# --------------------------------------------------------------------------- steps: model -> form


def step_fields(step: m.Step) -> dict[str, str]:
    """The form's initial values for `step`."""
    out = {"label": step.label or "", "kind": kind_of(step).key}
    match step:
        case m.Wait(seconds=seconds, calendar=True):
            out |= {"mode": "for", "duration": f"{seconds // DAY}d", "time": "09:00", "weekday": "",
                    "count": "calendar"}
        case m.Wait(seconds=seconds):
            out |= {"mode": "for", "duration": format_duration(seconds), "time": "09:00", "weekday": "",
                    "count": "exact"}
        case m.WaitUntil(time=time, weekday=weekday):
            out |= {"mode": "until", "duration": "1d", "time": str(time), "weekday": weekday or "",
                    "count": "exact"}
        case m.WaitForEvent(event=event, where=where, timeout_seconds=timeout):
            out |= {"event": event, "where": _expr(where), "timeout": format_duration(timeout)}
        case m.If(arms=arms, otherwise=otherwise):
            out |= {f"condition_{i}": format_expr(arm.condition) for i, arm in enumerate(arms)}
            out |= {"arms": str(len(arms)), "has_else": "on" if otherwise is not None else ""}
        case m.Split(name=name, arms=arms):
            out |= {"name": name, "arms": str(len(arms)),
                    "control": next((str(i) for i, a in enumerate(arms) if a.control), "")}
            out |= {f"percent_{i}": format_percent(a.percent).removesuffix("%") for i, a in enumerate(arms)}
            out |= {f"arm_label_{i}": a.label or "" for i, a in enumerate(arms)}
        case m.Send(channel=channel, text=text, template=template, title=title):
            out |= {"channel": channel, "content": "template" if template is not None else "text",
                    "text": text or "", "template": template or "", "title": title or ""}
        case m.IssueCoupon(pool=pool, result=result):
            out |= {"pool": pool, "result": result or ""}
        case m.CallWebhook(url=url, body=body, result=result):
            out |= {"url": url, "body": _expr(body), "result": result or ""}
        case m.UpdateProfile(path=path, op=op, value=value):
            out |= {"field": ".".join(path.parts[1:]), "op": op, "value": format_expr(value)}
        case m.Tag(action=action, tag=tag):
            out |= {"action": action, "tag": tag}
    return out


def _expr(expr: m.Expr | None) -> str:
    return format_expr(expr) if expr is not None else ""


# --------------------------------------------------------------------------- steps: form -> model


def step_from_fields(old: m.Step, fields: Mapping[str, str]) -> tuple[m.Step | None, list[FieldError]]:
    """The step the form describes, keeping `old`'s nested blocks and comments; or the
    problems, each on its field."""
    errors = [FieldError(name, "one line only: a step is written on one line")
              for name, value in fields.items()
              if ("\n" in value or "\r" in value) and not name.startswith(SAMPLE_PREFIX)]
    label = fields.get("label", "").strip()
    if label and not LABEL.match(label):
        errors.append(FieldError("label", "letters, digits and _ only, not starting with a digit"))
    if errors:
        return None, errors
    if isinstance(old, m.Split):
        return _split(old, fields, label)
    if isinstance(old, m.If):
        return _if(old, fields, label)
    if isinstance(old, m.Wait | m.WaitUntil) and (calendar := _calendar_errors(fields)):
        return None, calendar
    line = _header(old, fields)
    if line is None:
        return old, []
    parsed, errors = _parse_step(line, old, label)
    return parsed, errors


def _getter(f: Mapping[str, str]) -> Callable[[str], str]:
    """A field's value, stripped; "" when absent."""
    return lambda name: f.get(name, "").strip()


def _counts_calendar_days(f: Mapping[str, str]) -> bool:
    """The wait form's "same time of day, N days later" choice, for a wait of a length."""
    get = _getter(f)
    return get("mode") != "until" and get("count") == "calendar"


def _calendar_text(duration: str) -> str | None:
    """A calendar wait's "How long" as DSL (`2 days`): from `2`, `2d`, `2 days`, `1w` or
    `1 week`; None for anything else (`36h`), since the same time of day comes back only after
    whole days. The digits go to the parser as they are, which refuses too many of them."""
    found = _CALENDAR_FIELD.fullmatch(duration)
    if found is None:
        return None
    digits, unit = found.groups()
    if unit and unit.startswith("w"):
        if len(digits) > _MAX_WEEK_DIGITS:  # longer than any wait the parser accepts
            return f"{digits} weeks"
        digits = str(int(digits) * 7)
    return f"{digits} day" if digits == "1" else f"{digits} days"


def _calendar_errors(f: Mapping[str, str]) -> list[FieldError]:
    """A calendar wait of hours has no DSL to write, so the parser could not say what is wrong:
    the form says it, on the field to change."""
    if not _counts_calendar_days(f) or _calendar_text(_getter(f)("duration")) is not None:
        return []
    return [FieldError("duration", "same time of day, N days later counts whole days",
                       "write a number of days, such as 2 or 2d; for hours, choose “exactly this long”")]


def _header(old: m.Step, f: Mapping[str, str]) -> _Line | None:
    line = _Line()
    get = _getter(f)
    match old:
        case m.Wait() | m.WaitUntil():
            if get("mode") == "until":
                weekday = get("weekday")
                line.add("wait until ").add(f"{weekday} " if weekday else "", "weekday").add(get("time"), "time")
            elif _counts_calendar_days(f):
                line.add("wait ").add(_calendar_text(get("duration")) or "", "duration")
            else:
                line.add("wait ").add(get("duration"), "duration")
        case m.WaitForEvent():
            line.add("wait for event ").string(get("event"), "event")
            if get("where"):
                line.add(" where ").add(get("where"), "where")
            line.add(" up to ").add(get("timeout"), "timeout").add(":")
        case m.Send():
            line.add(f"send {old.channel} ")
            if get("content") == "template":
                line.add("template ").string(get("template"), "template")
            else:
                line.string(f.get("text", ""), "text")
            if old.channel == "push" and get("title"):
                line.add(" title ").string(f.get("title", ""), "title")
        case m.IssueCoupon():
            line.add("issue coupon ").string(get("pool"), "pool")
            if get("result"):
                line.add(" as ").add(get("result"), "result")
        case m.CallWebhook():
            line.add("call webhook ").string(get("url"), "url")
            if get("body"):
                line.add(" with ").add(get("body"), "body")
            if get("result"):
                line.add(" as ").add(get("result"), "result")
        case m.UpdateProfile():
            if not IDENTIFIER.match(get("field")):
                line.add("update user.").add(get("field") or "?", "field")
            else:
                line.add("update user.").add(get("field"), "field")
            line.add(f" {get('op') if get('op') in ('=', '+=', '-=') else '='} ").add(get("value"), "value")
        case m.Tag():
            line.add(f"{'remove' if get('action') == 'remove' else 'add'} tag ").string(get("tag"), "tag")
        case _:
            return None
    return line


def _parse_step(line: _Line, old: m.Step, label: str) -> tuple[m.Step | None, list[FieldError]]:
    prefix = f"{_INDENT}@{label} " if label else _INDENT
    text = _PREFIX + prefix + line.text + "\n"
    if isinstance(old, m.WaitForEvent):
        text += f"{_INDENT * 2}received:\n{_INDENT * 3}pass\n{_INDENT * 2}timeout:\n{_INDENT * 3}pass\n"
    elif isinstance(old, m.If):  # an arm's header opens a block: the stand-in gives it one
        text += f"{_INDENT * 2}pass\n"
    try:
        parsed = parse(text).steps[0]
    except JourneyError as error:
        # Past an error on the step's line the parser may trip on the stand-in's own lines: those
        # follow from the first and would only confuse.
        mine = [d for d in error.diagnostics if d.line == _STEP_LINE] or error.diagnostics[:1]
        return None, [_located(d.message, d.hint, d.line, d.column - 1 - len(prefix), line) for d in mine]
    parsed = with_blocks(parsed, m.child_blocks(old)) if m.child_blocks(old) else parsed
    return replace(parsed, comments=old.comments, label=label or None, blank_before=old.blank_before), []


def _located(message: str, hint: str | None, line: int, column: int, source: _Line) -> FieldError:
    field = source.field_for(column, message) if line == _STEP_LINE else ""
    return FieldError(field, plain(message), plain(hint) if hint else None)


def _if(old: m.If, f: Mapping[str, str], label: str) -> tuple[m.Step | None, list[FieldError]]:
    arms = []
    errors: list[FieldError] = []
    for i, arm in enumerate(old.arms):
        name = f"condition_{i}"
        line = _Line().add("if ").add(f.get(name, "").strip(), name).add(":")
        parsed, problems = _parse_step(line, m.If((m.CondBranch(m.Lit(True), (BARE_PASS,)),)), "")
        errors += problems
        if isinstance(parsed, m.If):
            arms.append(replace(arm, condition=parsed.arms[0].condition))
    if errors:
        return None, errors
    otherwise = old.otherwise
    if f.get("has_else") and otherwise is None:
        otherwise = m.Branch((BARE_PASS,))
    elif not f.get("has_else"):
        otherwise = None
    return replace(old, arms=tuple(arms), otherwise=otherwise, label=label or None), []


def _split(old: m.Split, f: Mapping[str, str], label: str) -> tuple[m.Step | None, list[FieldError]]:
    errors = []
    name = f.get("name", "").strip()
    if not name:
        errors.append(FieldError("name", "name the split: reports show it"))
    control = f.get("control", "")
    arms = []
    for i, arm in enumerate(old.arms):
        raw = f.get(f"percent_{i}", "").strip().removesuffix("%")
        try:
            percent = float(raw)
        except ValueError:
            errors.append(FieldError(f"percent_{i}", "a number, such as 50 or 33.3"))
            continue
        if not 0 < percent <= 100:
            errors.append(FieldError(f"percent_{i}", "more than 0 and at most 100"))
        arm_label = f.get(f"arm_label_{i}", arm.label or "").strip()  # a form without the field keeps it
        if arm_label and not LABEL.match(arm_label):
            errors.append(FieldError(f"arm_label_{i}", "letters, digits and _ only, not starting with a digit"))
        arms.append(replace(arm, percent=percent, control=control == str(i), label=arm_label or None))
    total = sum(a.percent for a in arms)
    if not errors and abs(total - 100) > 1e-6:
        errors.append(FieldError("", f"the shares add up to {total:g}%, not 100%"))
    if errors:
        return None, errors
    return replace(old, name=name, arms=tuple(arms), label=label or None), []


# --------------------------------------------------------------------------- settings


def settings_fields(journey: m.Journey) -> dict[str, str]:
    """The settings form's initial values: one row per repeated setting, plus a blank spare."""
    out: dict[str, str] = {"name": journey.name}
    for i, trigger in enumerate(journey.triggers):
        out |= _trigger_row(i, trigger)
    out["trigger_count"] = str(len(journey.triggers) + 1)
    out["audience"] = _expr(journey.audience.condition) if journey.audience else ""
    entry = journey.entry or m.Entry("once")
    out |= {"entry": entry.mode, "entry_every": format_duration(entry.every_seconds or 30 * 86_400)}
    for i, rule in enumerate(journey.exits):
        if isinstance(rule, m.ExitOnEvent):
            out |= {f"exit_kind_{i}": "event", f"exit_event_{i}": rule.event, f"exit_where_{i}": _expr(rule.where)}
        else:
            out |= {f"exit_kind_{i}": "when", f"exit_where_{i}": _expr(rule.condition)}
    out["exit_count"] = str(len(journey.exits) + 1)
    for i, goal in enumerate(journey.goals):
        out |= {f"goal_name_{i}": goal.name, f"goal_kind_{i}": "event" if goal.event is not None else "when",
                f"goal_event_{i}": goal.event or "", f"goal_where_{i}": _expr(goal.where),
                f"goal_within_{i}": format_duration(goal.within_seconds),
                f"goal_end_{i}": "exit" if goal.then_exit else ""}
    out["goal_count"] = str(len(journey.goals) + 1)
    quiet = journey.quiet_hours
    out |= {"quiet_start": str(quiet.start) if quiet else "", "quiet_end": str(quiet.end) if quiet else "",
            "timezone": journey.timezone.name if journey.timezone else ""}
    for i, cap in enumerate(journey.caps):
        out |= {f"cap_count_{i}": str(cap.count), f"cap_channel_{i}": cap.channel or "",
                f"cap_per_{i}": format_duration(cap.per_seconds)}
    out["cap_count"] = str(len(journey.caps) + 1)
    return out


def _trigger_row(i: int, trigger: m.Trigger) -> dict[str, str]:
    match trigger:
        case m.EventTrigger(event=event, where=where):
            return {f"trigger_kind_{i}": "event", f"trigger_event_{i}": event, f"trigger_where_{i}": _expr(where)}
        case m.ConditionTrigger(condition=condition):
            return {f"trigger_kind_{i}": "when", f"trigger_where_{i}": format_expr(condition)}
        case m.ScheduleTrigger(cron=cron, zone=zone):
            return {f"trigger_kind_{i}": "schedule", f"trigger_cron_{i}": cron, f"trigger_zone_{i}": zone or ""}
    return {f"trigger_kind_{i}": "api"}


def _zone_clause(choice: str) -> str:
    """The schedule's "Send at" choice as DSL. "" is the default left unwritten, "user" the same
    default written out (as a hand-written journey may have it): each reads back as it came,
    so applying the form unchanged changes no text."""
    return f" in {choice} zone" if choice in ("user", "journey") else ""


def _count(f: Mapping[str, str], row: str) -> int:
    try:
        return max(0, min(int(f.get(f"{row}_count", "0")), 50))
    except ValueError:
        return 0


def settings_from_fields(journey: m.Journey, f: Mapping[str, str]) -> tuple[m.Journey | None, list[FieldError]]:
    """The journey with the settings the form describes; or the problems, each on the field
    it is about. The settings are parsed and validated alone, over an empty flow: what is wrong
    with them there (a bad schedule, an unknown time zone, a zero window) is wrong anywhere."""
    if any("\n" in v or "\r" in v for v in f.values()):
        return None, [FieldError("", "each field holds one line")]
    lines = _settings_lines(f)
    name = _getter(f)("name") or journey.name
    text = f"journey {format_string(name)}\n" + "".join(f"{_INDENT}{line.text}\n" for line in lines)
    text += f"\n{_INDENT}pass\n"
    try:
        parsed = parse(text)
    except JourneyError as error:
        return None, [_on_setting(d, lines) for d in error.diagnostics]
    try:
        validate(parsed, text)
    except JourneyError as error:  # only a setting line's own problems: the stand-in's flow is not the journey's
        if mine := [_on_setting(d, lines) for d in error.diagnostics if 2 <= d.line < len(lines) + 2]:
            return None, mine
    return replace_settings(journey, _keep_comments(journey, parsed)), []


def _on_setting(problem: Diagnostic, lines: list[_Line]) -> FieldError:
    """A problem of the settings' stand-in journey on its field: line 1 is the name's, the
    setting lines follow it; past them (the stand-in's own `pass`) it is the form's as a whole."""
    if problem.line == 1:
        field = "name"
    elif 2 <= problem.line < len(lines) + 2:
        field = lines[problem.line - 2].field_for(problem.column - 1 - len(_INDENT), problem.message)
    else:
        field = ""
    return FieldError(field, plain(problem.message), plain(problem.hint) if problem.hint else None)


def _settings_lines(f: Mapping[str, str]) -> list[_Line]:
    get = _getter(f)
    lines = [*_trigger_lines(f)]
    if get("audience"):
        lines.append(_Line("audience").add("audience ").add(get("audience"), "audience"))
    if get("entry") == "once_every":
        lines.append(_Line("entry_every").add("entry once every ").add(get("entry_every"), "entry_every"))
    elif get("entry") == "always":
        lines.append(_Line("entry").add("entry always"))
    for i in range(_count(f, "exit")):
        event, where = get(f"exit_event_{i}"), get(f"exit_where_{i}")
        if get(f"exit_kind_{i}") == "event" and event:
            line = _Line(f"exit_event_{i}").add("exit on event ").string(event, f"exit_event_{i}")
            lines.append(line.add(" where ").add(where, f"exit_where_{i}") if where else line)
        elif get(f"exit_kind_{i}") == "when" and where:
            lines.append(_Line(f"exit_where_{i}").add("exit when ").add(where, f"exit_where_{i}"))
    lines += [goal for i in range(_count(f, "goal")) if (goal := _goal_line(f, i)) is not None]
    if get("quiet_start") or get("quiet_end"):
        lines.append(_Line("quiet_start").add("quiet hours ").add(get("quiet_start"), "quiet_start").add("-")
                     .add(get("quiet_end"), "quiet_end"))
    if get("timezone"):
        lines.append(_Line("timezone").add("timezone ").string(get("timezone"), "timezone"))
    for i in range(_count(f, "cap")):
        if get(f"cap_count_{i}"):
            channel = get(f"cap_channel_{i}")
            scope = f"{channel} " if channel in m.CHANNELS else ""
            lines.append(_Line(f"cap_count_{i}").add(f"frequency cap {scope}")
                         .add(get(f"cap_count_{i}"), f"cap_count_{i}", about=("message",))
                         .add(" messages per ").add(get(f"cap_per_{i}") or "1d", f"cap_per_{i}", about=("period",)))
    return lines


def _trigger_lines(f: Mapping[str, str]) -> list[_Line]:
    get = _getter(f)
    lines = []
    for i in range(_count(f, "trigger")):
        kind, event, where = get(f"trigger_kind_{i}"), get(f"trigger_event_{i}"), get(f"trigger_where_{i}")
        if kind == "event" and event:
            line = _Line(f"trigger_event_{i}").add("trigger event ").string(event, f"trigger_event_{i}")
            lines.append(line.add(" where ").add(where, f"trigger_where_{i}") if where else line)
        elif kind == "when" and where:
            lines.append(_Line(f"trigger_where_{i}").add("trigger when ").add(where, f"trigger_where_{i}"))
        elif kind == "schedule" and get(f"trigger_cron_{i}"):
            lines.append(_Line(f"trigger_cron_{i}").add("trigger schedule ")
                         .string(get(f"trigger_cron_{i}"), f"trigger_cron_{i}")
                         .add(_zone_clause(get(f"trigger_zone_{i}")), f"trigger_zone_{i}"))
        elif kind == "api":
            lines.append(_Line(f"trigger_kind_{i}").add("trigger api"))
    return lines


def _goal_line(f: Mapping[str, str], i: int) -> _Line | None:
    get = _getter(f)
    name, within, where = get(f"goal_name_{i}"), get(f"goal_within_{i}") or "14d", get(f"goal_where_{i}")
    if not name:
        return None
    line = _Line(f"goal_name_{i}").add("goal ").string(name, f"goal_name_{i}")
    if get(f"goal_kind_{i}") == "when":
        line.add(" when ").grouped(where, f"goal_where_{i}")
    else:
        line.add(" on event ").string(get(f"goal_event_{i}"), f"goal_event_{i}")
        if where:
            line.add(" where ").grouped(where, f"goal_where_{i}")
    line.add(" within ").add(within, f"goal_within_{i}", about=("window",))
    return line.add(" then exit" if get(f"goal_end_{i}") == "exit" else "")


def _keep_comments(old: m.Journey, new: m.Journey) -> m.Journey:
    """Comments stay with the setting in the same place: the form does not show them, and
    rewriting settings must not lose what an author wrote beside them."""
    def carry(olds: tuple[m.Setting, ...], news: tuple[m.Setting, ...]) -> tuple[m.Setting, ...]:
        return tuple(replace(n, comments=o.comments) if type(o) is type(n) else n
                     for o, n in zip(olds, news, strict=False)) + news[len(olds):]

    def one(o: m.Setting | None, n: m.Setting | None) -> m.Setting | None:
        return replace(n, comments=o.comments) if o is not None and n is not None else n

    return replace(
        new, triggers=carry(old.triggers, new.triggers), exits=carry(old.exits, new.exits),  # type: ignore[arg-type]
        goals=carry(old.goals, new.goals), caps=carry(old.caps, new.caps),  # type: ignore[arg-type]
        audience=one(old.audience, new.audience), entry=one(old.entry, new.entry),  # type: ignore[arg-type]
        quiet_hours=one(old.quiet_hours, new.quiet_hours), timezone=one(old.timezone, new.timezone),  # type: ignore[arg-type]
    )


def describe_settings(journey: m.Journey) -> list[str]:
    """The settings as DSL lines, for the start node's summary."""
    return [format_setting(s) for s in journey.settings()]
