"""Text to model: one shared LALR parser over `journey.lark`, and located, friendly errors.

Comments are cut out of the text before lexing (blanked, so columns stay true) and handed
back to the model by line: an own-line comment belongs to the next line of content, a
comment at a line's end to that line. Every line of content starts exactly one node, which
is what makes that rule complete.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import Any, ClassVar, NoReturn, cast

from lark import (
    Lark,
    Token,
    Transformer,
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
    v_args,
)
from lark.exceptions import VisitError
from lark.indenter import Indenter
from lark.tree import Meta, Tree

from . import model as m
from .durations import UNIT_SECONDS, parse_calendar_days, parse_duration
from .errors import Diagnostic, JourneySyntaxError

MAX_SYNTAX_ERRORS = 10
INDENT_WIDTH = 2
MAX_NESTING = 100  # levels of blocks and expressions; deeper would overflow the recursive passes
MAX_DIGITS = 1000  # in a whole number; Python refuses to read (and print) ints of over 4300 digits
# A wait or a window is added to (or taken from) the current time: a century is as long as any
# journey can mean, while 10**12 days would be an OverflowError when a user reached the step.
MAX_DURATION_DAYS = 100 * 366
# A label names its step in indexed columns (outbox keys, counters), whose entries PostgreSQL
# limits to about 2.7 kB.
MAX_LABEL_LENGTH = 100


# --------------------------------------------------------------------------- comments


@dataclass
class _Layout:
    """What the lexer never sees: comments, and where the blank lines were."""

    leading: dict[int, list[str]] = field(default_factory=dict)
    trailing: dict[int, str] = field(default_factory=dict)
    end: list[str] = field(default_factory=list)
    blank_before: set[int] = field(default_factory=set)

    def comments(self, line: int) -> m.Comments:
        leading = self.leading.get(line)
        trailing = self.trailing.get(line)
        if not leading and trailing is None:
            return m.NO_COMMENTS
        return m.Comments(tuple(leading or ()), trailing)


def _comment_start(line: str) -> int:
    """Index of the `#` that starts a comment on this line, or -1 (a `#` in a string is text)."""
    in_string = escaped = False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            return i
    return -1


def _split_comments(text: str) -> tuple[str, _Layout]:
    layout = _Layout()
    pending: list[str] = []
    blank_above_pending = False  # a blank line came before the pending comment block
    out: list[str] = []
    previous_blank = False
    for number, line in enumerate(text.split("\n"), start=1):
        at = _comment_start(line)
        code = line if at < 0 else line[:at]
        comment = None if at < 0 else line[at + 1 :].rstrip()
        if not code.strip():
            if comment is not None:
                if not pending:
                    blank_above_pending = previous_blank
                pending.append(comment)
            else:
                previous_blank = True
            out.append("")
            continue
        if blank_above_pending if pending else previous_blank:
            layout.blank_before.add(number)
        if pending:
            layout.leading[number] = pending
            pending = []
        if comment is not None:
            layout.trailing[number] = comment
        previous_blank = False
        out.append(code.rstrip())
    layout.end = pending
    return "\n".join(out), layout


# --------------------------------------------------------------------------- lexing


class _LexProblem(Exception):
    """Found by the post-lexer: bad indentation (fatal) or two words run together."""

    def __init__(self, token: Token, message: str, hint: str | None = None, fatal: bool = False) -> None:
        self.token, self.message, self.hint, self.fatal = token, message, hint, fatal


class _JourneyIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: ClassVar[list[str]] = []
    CLOSE_PAREN_types: ClassVar[list[str]] = []
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token: Token) -> Iterator[Token]:
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        levels = self.indent_level
        if indent < levels[-1] and indent not in levels:
            line = (token.end_line or token.line or 1)
            where = Token.new_borrow_pos("_NL", token, token)
            where.line, where.column = line, indent + 1
            raise _LexProblem(
                where,
                f"this line is indented by {indent}, which matches no enclosing block "
                f"(those are at {', '.join(str(x) for x in levels)})",
                f"indent each block by {INDENT_WIDTH} spaces more than the line that opens it",
                fatal=True,
            )
        yield from super().handle_NL(token)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        previous: Token | None = None
        for token in super().process(stream):  # type: ignore[no-untyped-call]
            if token.type not in ("_INDENT", "_DEDENT", "_NL"):
                if (
                    previous is not None
                    and previous.end_pos == token.start_pos
                    and _wordy(previous.value[-1])
                    and _wordy(token.value[0])
                ):
                    raise _LexProblem(
                        previous,
                        f"unexpected text {previous.value + token.value!r}",
                        "separate words with a space; durations are written like 2d, 3h, 30m",
                    )
                previous = token
            else:
                previous = None
            yield token


def _wordy(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_PER_THREAD = threading.local()


def _lark() -> Lark:
    """This thread's parser. The indentation post-lexer keeps its state on itself while it
    runs, so two threads sharing one parser (the server's, the engine's) break each other's
    indentation midway, and lark's own DedentError escapes `parse`."""
    parser: Lark | None = getattr(_PER_THREAD, "parser", None)
    if parser is None:
        parser = _PER_THREAD.parser = _new_lark()
    return parser


def _new_lark() -> Lark:
    grammar = _grammar()
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        postlex=_JourneyIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,
    )


@cache
def _grammar() -> str:
    return resources.files(__package__).joinpath("journey.lark").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- errors

_TERMINAL_NAMES = {
    "STRING": "a quoted string",
    "NAME": "a name",
    "LABEL": "a step label like @welcome",
    "DURATION": "a duration like 2d, 3h or 30m",
    "CALENDAR_DAYS": "calendar days like 2 days or 1 week",
    "ZONE_OWNER": "whose time zone: user or journey",
    "PERCENT": "a percentage like 50%",
    "TIME": "a time of day like 09:00",
    "NUMBER": "a number",
    "INT": "a whole number",
    "CHANNEL": "a channel (sms or push)",
    "MESSAGES": '"messages"',
    "WEEKDAY": "a weekday",
    "UPDATE_OP": "=, += or -=",
    "COMP_OP": "a comparison",
    "ADD_OP": "+ or -",
    "MUL_OP": "* or /",
    "CONTROL": '"control"',
    "WAIT_OUTCOME": '"received:" or "timeout:"',
    "_NL": "the end of the line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "the end of the file",
}

_STEP_WORDS = ("wait", "send", "issue", "call", "update", "add", "remove", "if", "split", "exit", "pass")
_SETTING_WORDS = ("trigger", "audience", "entry", "exit", "goal", "quiet", "timezone", "frequency")


def _describe(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    return f'"{pattern.value}"'


_TOKEN_NAMES = {"_NL": "end of line", "_INDENT": "indentation", "_DEDENT": "end of block",
                "$END": "end of file"}


def _describe_token(token: Token) -> str:
    return _TOKEN_NAMES.get(token.type) or repr(str(token.value))


def _hint(token: Token, expected: set[str]) -> str | None:
    value = str(token.value)
    if token.type == "_INDENT":
        return "only a line ending in ':' opens an indented block"
    if "CHANNEL" in expected and token.type == "NAME":
        return f'channels are {", ".join(m.CHANNELS)}; "{value}" is not one of them'
    if "DURATION" in expected and token.type in ("NUMBER", "INT"):
        if "CALENDAR_DAYS" in expected:
            return ("a duration needs a unit: s, m, h, d or w (as in 2d); "
                    "`2 days` waits until the same time of day two days later")
        return "a duration needs a unit: s, m, h, d or w (as in 2d)"
    if "ZONE_OWNER" in expected:
        return ("`in user zone` sends at that time of each person's own zone, "
                "`in journey zone` at one moment for everyone")
    if expected - {"_NL"} == {"EXIT"}:
        return "a goal ends the run with `then exit`; without it, the run goes on"
    if "THEN" in expected and token.type != "_NL":
        return "to end the run when the goal is reached, write `then exit` after the window"
    if "COLON" in expected and token.type == "_NL":
        return "a line that opens a block (if, else, split, wait for, a branch) ends with ':'"
    if {"WAIT", "SEND"} <= expected and token.type in ("NAME", "_DEDENT"):
        if token.type == "_DEDENT":
            return "a journey needs at least one step after its settings"
        return f"steps start with one of: {', '.join(_STEP_WORDS)}"
    if "TRIGGER" in expected and token.type == "NAME":
        return f"settings start with one of: {', '.join(_SETTING_WORDS)}"
    return None


def _expected_text(expected: set[str]) -> str:
    names = sorted({_describe(e) for e in expected if not e.startswith("__")})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names)


def _diagnostic(lines: list[str], line: int, column: int, message: str, hint: str | None = None,
                width: int = 1) -> Diagnostic:
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    return Diagnostic(line, column, message, hint, source, width)


def _syntax_diagnostic(lines: list[str], error: UnexpectedInput) -> Diagnostic:
    if isinstance(error, UnexpectedToken):
        token = error.token
        line = token.line or len(lines)
        column = token.column or 1
        if token.type == "_INDENT":
            line = token.end_line or line
            column = _indent_of(lines[line - 1]) + 1 if line <= len(lines) else 1
        elif token.type in ("_NL", "$END", "_DEDENT"):
            line = min(token.line or len(lines), len(lines))
            while line > 1 and not lines[line - 1].strip():
                line -= 1
            column = len(lines[line - 1].rstrip()) + 1 if lines else 1
        message = (
            f"unexpected {_describe_token(token)}; expected {_expected_text(set(error.expected))}"
        )
        width = len(str(token.value)) if token.type not in _TOKEN_NAMES else 1
        source = lines[line - 1] if 0 < line <= len(lines) else ""
        start = column - 1
        while token.type not in _TOKEN_NAMES and start > 0 and _wordy(source[start - 1]):
            start -= 1  # the lexer split a word it did not know ("apii" as "api" "i")
        if start < column - 1:
            word = source[start : column - 1 + width]
            return _diagnostic(lines, line, start + 1, f"unexpected text {word!r}",
                               "check the spelling of this word", len(word))
        return _diagnostic(lines, line, column, message, _hint(token, set(error.expected)), width)
    if isinstance(error, UnexpectedCharacters):
        char = lines[error.line - 1][error.column - 1] if error.line <= len(lines) else "?"
        hint = None
        if char == "'":
            hint = 'strings use double quotes: "like this"'
        elif char == "\t":
            hint = "indent with spaces"
        expected = f"; expected {_expected_text(set(error.allowed))}" if error.allowed else ""
        return _diagnostic(lines, error.line, error.column, f"unexpected character {char!r}{expected}", hint)
    return _diagnostic(lines, getattr(error, "line", 1), getattr(error, "column", 1), str(error))


# --------------------------------------------------------------------------- tree to model


class _BuildError(Exception):
    def __init__(self, line: int, column: int, message: str, hint: str | None = None, width: int = 1):
        self.line, self.column, self.message, self.hint, self.width = line, column, message, hint, width


def _fail(at: Token | Meta, message: str, hint: str | None = None) -> NoReturn:
    width = len(str(at)) if isinstance(at, Token) else 1
    raise _BuildError(at.line or 1, at.column or 1, message, hint, width)


def _loc(at: Token | Meta) -> m.Loc:
    return m.Loc(at.line or 0, at.column or 0)


def _string(token: Token) -> str:
    try:
        value = json.loads(token, strict=False)
    except json.JSONDecodeError as error:
        _fail(token, f"bad escape in string: {error.msg}",
              'the escapes are \\", \\\\, \\n, \\t and \\uXXXX')
    assert isinstance(value, str)
    # A high and a low surrogate side by side are one character, as JSON reads "\ud83d\ude00":
    # joining them here is what lets the formatter's escapes read back the same.
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _whole(token: Token) -> int:
    """A whole number, or the seconds of a duration (`1d12h`)."""
    if any(len(digits) > MAX_DIGITS for digits in re.findall(r"[0-9]+", token)):
        _fail(token, f"this number has more than {MAX_DIGITS} digits")
    if token.type != "DURATION":
        return int(token)
    seconds = parse_duration(token)
    if seconds > MAX_DURATION_DAYS * UNIT_SECONDS["d"]:
        _fail(token, f"this duration is longer than {MAX_DURATION_DAYS} days",
              "waits and windows are counted from the current time; keep them within a century")
    return seconds


def _calendar_seconds(token: Token) -> int:
    """The seconds of `2 days` / `1 week`: the days times 86,400, as `m.Wait` holds them."""
    digits = re.match(r"[0-9]+", token)
    assert digits is not None
    if len(digits.group()) > MAX_DIGITS:
        _fail(token, f"this number has more than {MAX_DIGITS} digits")
    days = parse_calendar_days(token)
    if days > MAX_DURATION_DAYS:
        _fail(token, f"this wait is longer than {MAX_DURATION_DAYS} days",
              "waits are counted from the current time; keep them within a century")
    return days * UNIT_SECONDS["d"]


def _real(token: Token, text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # `1e999` would print back as `inf`, a name
        _fail(token, "this number is too large", "numbers go up to about 1.8e308")
    return value


def _time(token: Token) -> m.TimeOfDay:
    hour, minute = (int(x) for x in token.split(":"))
    if hour > 23 or minute > 59:
        _fail(token, f"{token} is not a time of day", "use 24-hour times from 00:00 to 23:59")
    return m.TimeOfDay(hour, minute, _loc(token))


def _fold(op_name: str, meta: Meta, children: list[Any]) -> m.Expr:
    result = cast(m.Expr, children[0])
    for right in children[1:]:
        result = m.Binary(op_name, result, right, _loc(meta))  # type: ignore[arg-type]
    return result


def _label(children: list[Any]) -> tuple[str | None, list[Any]]:
    if children and isinstance(children[0], Token) and children[0].type == "LABEL":
        if len(children[0]) - 1 > MAX_LABEL_LENGTH:
            _fail(children[0], f"this label is longer than {MAX_LABEL_LENGTH} characters")
        return children[0][1:], children[1:]
    return None, children


@v_args(meta=True)
class _ToModel(Transformer[Token, m.Journey]):
    """Builds model nodes bottom-up; each node takes its comments from the layout by line."""

    def __init__(self, layout: _Layout) -> None:
        super().__init__()
        self.layout = layout

    def _meta_kw(self, meta: Meta) -> dict[str, Any]:
        return {"comments": self.layout.comments(meta.line), "loc": _loc(meta)}

    def _step_kw(self, meta: Meta) -> dict[str, Any]:
        return {**self._meta_kw(meta), "blank_before": meta.line in self.layout.blank_before}

    # ---- journey and settings

    def start(self, meta: Meta, children: list[Any]) -> m.Journey:
        journey: m.Journey = children[-1]
        return replace(journey, end_comments=tuple(self.layout.end))

    def journey(self, meta: Meta, children: list[Any]) -> m.Journey:
        name_token, *items = children
        groups: dict[str, list[Any]] = {"triggers": [], "exits": [], "goals": [], "caps": [], "steps": []}
        single: dict[str, Any] = {}
        single_types = {m.Audience: "audience", m.Entry: "entry", m.QuietHours: "quiet_hours",
                        m.TimeZone: "timezone"}
        for item in items:
            if isinstance(item, m.EventTrigger | m.ConditionTrigger | m.ScheduleTrigger | m.ApiTrigger):
                groups["triggers"].append(item)
            elif isinstance(item, m.ExitOnEvent | m.ExitWhen):
                groups["exits"].append(item)
            elif isinstance(item, m.Goal):
                groups["goals"].append(item)
            elif isinstance(item, m.FrequencyCap):
                groups["caps"].append(item)
            elif type(item) in single_types:
                key = single_types[type(item)]
                if key in single:
                    _fail_at_loc(item.loc, f"{key.replace('_', ' ')} is set twice",
                                 f"the first is on line {single[key].loc.line}")
                single[key] = item
            else:
                groups["steps"].append(item)
        return m.Journey(
            name=_string(name_token),
            triggers=tuple(groups["triggers"]),
            audience=single.get("audience"),
            entry=single.get("entry"),
            exits=tuple(groups["exits"]),
            goals=tuple(groups["goals"]),
            quiet_hours=single.get("quiet_hours"),
            timezone=single.get("timezone"),
            caps=tuple(groups["caps"]),
            steps=tuple(groups["steps"]),
            comments=self.layout.comments(meta.line),
            loc=_loc(meta),
        )

    def where(self, meta: Meta, children: list[Any]) -> m.Expr:
        return cast(m.Expr, children[0])

    def event_trigger(self, meta: Meta, children: list[Any]) -> m.EventTrigger:
        return m.EventTrigger(_string(children[0]), children[1], **self._meta_kw(meta))

    def condition_trigger(self, meta: Meta, children: list[Any]) -> m.ConditionTrigger:
        return m.ConditionTrigger(children[0], **self._meta_kw(meta))

    def schedule_trigger(self, meta: Meta, children: list[Any]) -> m.ScheduleTrigger:
        cron, zone = children
        written = None if zone is None else cast(m.ScheduleZone, str(zone))
        return m.ScheduleTrigger(_string(cron), written, **self._meta_kw(meta))

    def api_trigger(self, meta: Meta, children: list[Any]) -> m.ApiTrigger:
        return m.ApiTrigger(**self._meta_kw(meta))

    def audience(self, meta: Meta, children: list[Any]) -> m.Audience:
        return m.Audience(children[0], **self._meta_kw(meta))

    def entry_once(self, meta: Meta, children: list[Any]) -> m.Entry:
        return m.Entry("once", **self._meta_kw(meta))

    def entry_always(self, meta: Meta, children: list[Any]) -> m.Entry:
        return m.Entry("always", **self._meta_kw(meta))

    def entry_once_every(self, meta: Meta, children: list[Any]) -> m.Entry:
        return m.Entry("once_every", _whole(children[0]), **self._meta_kw(meta))

    def exit_on_event(self, meta: Meta, children: list[Any]) -> m.ExitOnEvent:
        return m.ExitOnEvent(_string(children[0]), children[1], **self._meta_kw(meta))

    def exit_when(self, meta: Meta, children: list[Any]) -> m.ExitWhen:
        return m.ExitWhen(children[0], **self._meta_kw(meta))

    def goal_event(self, meta: Meta, children: list[Any]) -> m.Goal:
        name, event, where, within, then_exit = children
        return m.Goal(_string(name), _string(event), where, _whole(within), then_exit is not None,
                      **self._meta_kw(meta))

    def goal_when(self, meta: Meta, children: list[Any]) -> m.Goal:
        name, condition, within, then_exit = children
        return m.Goal(_string(name), None, condition, _whole(within), then_exit is not None,
                      **self._meta_kw(meta))

    def then_exit(self, meta: Meta, children: list[Any]) -> bool:
        return True

    def quiet(self, meta: Meta, children: list[Any]) -> m.QuietHours:
        return m.QuietHours(_time(children[0]), _time(children[1]), **self._meta_kw(meta))

    def timezone(self, meta: Meta, children: list[Any]) -> m.TimeZone:
        return m.TimeZone(_string(children[0]), **self._meta_kw(meta))

    def cap(self, meta: Meta, children: list[Any]) -> m.FrequencyCap:
        channel = str(children[0]) if children[0].type == "CHANNEL" else None
        count, _messages, per = children[-3:]
        return m.FrequencyCap(_whole(count), _whole(per), channel, **self._meta_kw(meta))

    # ---- simple steps: the action builds the node, `simple_step` adds label and layout

    def simple_step(self, meta: Meta, children: list[Any]) -> m.Step:
        label, (step,) = _label(children)
        return cast(m.Step, replace(step, label=label, **self._step_kw(meta)))

    def wait(self, meta: Meta, children: list[Any]) -> m.Wait:
        return m.Wait(_whole(children[0]))

    def wait_days(self, meta: Meta, children: list[Any]) -> m.Wait:
        return m.Wait(_calendar_seconds(children[0]), calendar=True)

    def wait_until(self, meta: Meta, children: list[Any]) -> m.WaitUntil:
        weekday = str(children[0]) if len(children) == 2 else None
        return m.WaitUntil(_time(children[-1]), weekday)

    def title(self, meta: Meta, children: list[Any]) -> str:
        return _string(children[0])

    def result(self, meta: Meta, children: list[Any]) -> str:
        return str(children[0])

    def send_text(self, meta: Meta, children: list[Any]) -> m.Send:
        channel, text, title = children
        return m.Send(str(channel), text=_string(text), title=title)

    def send_template(self, meta: Meta, children: list[Any]) -> m.Send:
        channel, name, title = children
        return m.Send(str(channel), template=_string(name), title=title)

    def issue_coupon(self, meta: Meta, children: list[Any]) -> m.IssueCoupon:
        pool, result = children
        return m.IssueCoupon(_string(pool), result)

    def call_webhook(self, meta: Meta, children: list[Any]) -> m.CallWebhook:
        url, body, result = children
        return m.CallWebhook(_string(url), body, result)

    def update(self, meta: Meta, children: list[Any]) -> m.UpdateProfile:
        path, op, value = children
        return m.UpdateProfile(path, str(op), value)  # type: ignore[arg-type]

    def add_tag(self, meta: Meta, children: list[Any]) -> m.Tag:
        return m.Tag("add", _string(children[0]))

    def remove_tag(self, meta: Meta, children: list[Any]) -> m.Tag:
        return m.Tag("remove", _string(children[0]))

    def exit_step(self, meta: Meta, children: list[Any]) -> m.ExitStep:
        return m.ExitStep()

    def pass_step(self, meta: Meta, children: list[Any]) -> m.Pass:
        return m.Pass()

    # ---- compound steps

    def block(self, meta: Meta, children: list[Any]) -> tuple[m.Step, ...]:
        return tuple(children)

    def if_step(self, meta: Meta, children: list[Any]) -> m.If:
        label, rest = _label(children)
        condition, steps, *others = rest
        first = m.CondBranch(condition, steps, loc=_loc(meta))
        elifs = [o for o in others if isinstance(o, m.CondBranch)]
        otherwise = next((o for o in others if isinstance(o, m.Branch)), None)
        return m.If((first, *elifs), otherwise, label, **self._step_kw(meta))

    def elif_arm(self, meta: Meta, children: list[Any]) -> m.CondBranch:
        return m.CondBranch(children[0], children[1], **self._meta_kw(meta))

    def else_arm(self, meta: Meta, children: list[Any]) -> m.Branch:
        return m.Branch(children[0], **self._meta_kw(meta))

    def split_step(self, meta: Meta, children: list[Any]) -> m.Split:
        label, (name, *arms) = _label(children)
        return m.Split(_string(name), tuple(arms), label, **self._step_kw(meta))

    def split_arm(self, meta: Meta, children: list[Any]) -> m.SplitArm:
        label, rest = _label(children)
        percent = _real(rest[0], rest[0][:-1])
        control = len(rest) == 3
        return m.SplitArm(percent, control, rest[-1], label, **self._meta_kw(meta))

    def wait_for_step(self, meta: Meta, children: list[Any]) -> m.WaitForEvent:
        label, (event, where, up_to, *arms) = _label(children)
        outcomes: dict[str, m.Branch] = {}
        for outcome, branch in arms:
            if outcome in outcomes:
                _fail_at_loc(branch.loc, f'"{outcome}:" appears twice in this wait',
                             f"the first is on line {outcomes[outcome].loc.line}")
            outcomes[outcome] = branch
        return m.WaitForEvent(_string(event), where, _whole(up_to),
                              outcomes.get("received"), outcomes.get("timeout"), label,
                              **self._step_kw(meta))

    def wait_for_arm(self, meta: Meta, children: list[Any]) -> tuple[str, m.Branch]:
        outcome, steps = children
        return str(outcome), m.Branch(steps, **self._meta_kw(meta))

    # ---- expressions

    def or_expr(self, meta: Meta, children: list[Any]) -> m.Expr:
        return _fold("or", meta, children)

    def and_expr(self, meta: Meta, children: list[Any]) -> m.Expr:
        return _fold("and", meta, children)

    def not_(self, meta: Meta, children: list[Any]) -> m.Unary:
        return m.Unary("not", children[0], _loc(meta))

    def comparison(self, meta: Meta, children: list[Any]) -> m.Compare:
        left, op, right = children
        return m.Compare(" ".join(str(op).split()), left, right, _loc(meta))  # type: ignore[arg-type]

    def _arith(self, meta: Meta, children: list[Any]) -> m.Expr:
        result = cast(m.Expr, children[0])
        for op, right in zip(children[1::2], children[2::2], strict=True):
            result = m.Binary(str(op), result, right, _loc(meta))  # type: ignore[arg-type]
        return result

    sum = _arith
    product = _arith

    def neg(self, meta: Meta, children: list[Any]) -> m.Expr:
        (operand,) = children
        if isinstance(operand, m.Lit) and type(operand.value) in (int, float):
            return m.Lit(-operand.value, _loc(meta))  # type: ignore[operator]
        return m.Unary("-", operand, _loc(meta))

    def string(self, meta: Meta, children: list[Any]) -> m.Lit:
        return m.Lit(_string(children[0]), _loc(meta))

    def number(self, meta: Meta, children: list[Any]) -> m.Lit:
        text = str(children[0])
        if not any(c in text for c in ".eE"):
            return m.Lit(_whole(children[0]), _loc(meta))
        return m.Lit(_real(children[0], text), _loc(meta))

    def duration(self, meta: Meta, children: list[Any]) -> m.Dur:
        return m.Dur(_whole(children[0]), _loc(meta))

    def true(self, meta: Meta, children: list[Any]) -> m.Lit:
        return m.Lit(True, _loc(meta))

    def false(self, meta: Meta, children: list[Any]) -> m.Lit:
        return m.Lit(False, _loc(meta))

    def null(self, meta: Meta, children: list[Any]) -> m.Lit:
        return m.Lit(None, _loc(meta))

    def path(self, meta: Meta, children: list[Any]) -> m.Path:
        return m.Path(tuple(str(c) for c in children), _loc(meta))

    def call(self, meta: Meta, children: list[Any]) -> m.Call:
        name, *args = children
        return m.Call(str(name), tuple(a for a in args if a is not None), _loc(meta))

    def list_expr(self, meta: Meta, children: list[Any]) -> m.ListExpr:
        return m.ListExpr(tuple(c for c in children if c is not None), _loc(meta))

    def object_expr(self, meta: Meta, children: list[Any]) -> m.ObjectExpr:
        return m.ObjectExpr(tuple(c for c in children if c is not None), _loc(meta))

    def pair(self, meta: Meta, children: list[Any]) -> tuple[str, m.Expr]:
        return _string(children[0]), children[1]

    def history(self, meta: Meta, children: list[Any]) -> m.History:
        event, (where, window) = children
        return m.History(_string(event), where, window, _loc(meta))

    def history_filter(self, meta: Meta, children: list[Any]) -> tuple[m.Expr | None, int | None]:
        where, *window = children
        return where, (_whole(window[0]) if window else None)


def _fail_at_loc(loc: m.Loc, message: str, hint: str | None = None) -> NoReturn:
    raise _BuildError(loc.line, loc.column, message, hint)


_CHAINS = {"or_expr": 1, "and_expr": 1, "sum": 2, "product": 2}  # tree children per operator


def _check_nesting(lines: list[str], tree: Tree[Token]) -> None:
    """Refuse what nests deeper than MAX_NESTING: the model is built, printed and compared by
    recursion. A chain like `a or b or c` is flat in the tree but nests in the model."""
    stack: list[tuple[Tree[Token], int, int, int]] = [(tree, 0, 1, 1)]
    while stack:
        node, depth, line, column = stack.pop()
        per_operator = _CHAINS.get(node.data)
        depth += 1 if per_operator is None else (len(node.children) - 1) // per_operator
        line, column = getattr(node.meta, "line", line), getattr(node.meta, "column", column)
        if depth > MAX_NESTING:
            raise JourneySyntaxError([_diagnostic(
                lines, line, column, f"this nests more than {MAX_NESTING} levels deep",
                "split it into simpler parts; in a chain like `a or b or c`, each operator is a level",
            )])
        stack.extend((child, depth, line, column) for child in node.children if isinstance(child, Tree))


# --------------------------------------------------------------------------- entry point


def _decode(source: str | bytes) -> str:
    if isinstance(source, str):
        return source
    try:
        return source.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # Count lines and columns in characters, as everywhere else, and from `error.object`:
        # `error.start` counts from there, after any BOM.
        head = _normalize_lines(error.object[: error.start].decode("utf-8", "replace")).split("\n")
        lines = _normalize_lines(error.object.decode("utf-8", "replace")).split("\n")
        raise JourneySyntaxError([Diagnostic(len(head), len(head[-1]) + 1, "the file is not valid UTF-8",
                                             "save the file as UTF-8", lines[len(head) - 1])]) from None


def _normalize_lines(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


_SETTING_STARTS = ("trigger", "audience", "entry", "goal", "quiet", "timezone", "frequency",
                   "exit on", "exit when")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _patch(code_lines: list[str], line: int) -> bool:
    """Replace a bad line with a neutral one of the same kind, so parsing can go on to find
    the next, independent error. False when no safe patch exists."""
    index = line - 1
    if not 0 <= index < len(code_lines):
        return False
    text = code_lines[index]
    stripped = text.strip()
    if not stripped or stripped.startswith(("journey", "else", "elif", "received", "timeout")):
        return False
    pad = text[: _indent_of(text)]
    following = next((t for t in code_lines[index + 1 :] if t.strip()), "")
    opens_block = stripped.endswith(":") or _indent_of(following) > len(pad)
    if stripped[0].isdigit():
        return False  # a split arm: patching it would only break the percentages
    if opens_block:
        code_lines[index] = pad + "if true:"
    elif stripped.startswith(_SETTING_STARTS):
        code_lines[index] = pad + "trigger api"
    else:
        code_lines[index] = pad + "pass"
    return True


def _locate(lines: list[str], error: Exception) -> tuple[Diagnostic, bool]:
    """The diagnostic for a parse failure, and whether parsing may go on past it."""
    if isinstance(error, _LexProblem):
        token = error.token
        return (_diagnostic(lines, token.line or 1, token.column or 1, error.message, error.hint,
                            len(str(token.value)) if not error.fatal else 1), not error.fatal)
    assert isinstance(error, UnexpectedInput)
    diagnostic = _syntax_diagnostic(lines, error)
    at_end = isinstance(error, UnexpectedToken) and error.token.type in ("$END", "_INDENT", "_DEDENT")
    return diagnostic, not at_end


def normalize(source: str | bytes) -> str:
    """The text as the parser reads it: UTF-8 decoded, no BOM, `\n` line ends."""
    return _normalize_lines(_decode(source))


def parse(source: str | bytes) -> m.Journey:
    """Parse journey text into a model, or raise `JourneySyntaxError` with every problem found.

    Any input whatsoever ends in one of those two outcomes; nothing else escapes.
    """
    text = normalize(source)
    lines = text.split("\n")
    code, layout = _split_comments(text)
    code_lines = code.split("\n")
    if code_lines[-1] != "":
        code_lines.append("")

    problems: list[Diagnostic] = []
    tree: Tree[Token] | None = None
    while tree is None:
        try:
            tree = _lark().parse("\n".join(code_lines))
        except (UnexpectedInput, _LexProblem) as error:
            diagnostic, can_go_on = _locate(lines, error)
            if problems and diagnostic.line <= problems[-1].line:
                break  # the patch did not help: what follows is only an echo of the last error
            problems.append(diagnostic)
            if not can_go_on or len(problems) >= MAX_SYNTAX_ERRORS or not _patch(code_lines, diagnostic.line):
                break
    if problems or tree is None:
        raise JourneySyntaxError(problems)
    _check_nesting(lines, tree)
    try:
        journey: m.Journey = _ToModel(layout).transform(tree)
    except VisitError as error:
        inner = error.orig_exc
        if not isinstance(inner, _BuildError):
            raise
        raise JourneySyntaxError([_diagnostic(lines, inner.line, inner.column, inner.message,
                                              inner.hint, inner.width)]) from None
    return journey
