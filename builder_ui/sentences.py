"""The journey in the marketer's words: a short plain sentence for every step, trigger, audience,
goal, exit rule, setting and condition, for the canvas cards.

Pure: model in, words out. The DSL text stays the source of truth and is shown beside these
sentences for power users, so a sentence may simplify (it never has to read back); and it must
never fail: anything this module does not know how to say is said as its DSL text.

Values are kept as written (Chinese text stays Chinese, `care_solution` stays `care_solution`),
field names lose their `user.` and underscores (`user.total_spend` is "total spend"), and the
placeholders of a message become chips ("[first name]") rather than template code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from dsl import model as m
from dsl.durations import DAY, HOUR, MINUTE
from dsl.formatter import format_expr, format_number, format_percent, format_setting, step_header
from dsl.numerals import ascii_digits


@dataclass(frozen=True)
class Part:
    """A run of a sentence: plain words, or a chip standing for a value filled in per person."""

    text: str
    chip: bool = False


Sentence = tuple[Part, ...]
T = TypeVar("T")


def plain(sentence: Sentence) -> str:
    """The sentence as one line of text, chips in brackets: for labels, tooltips and tests."""
    return "".join(f"[{p.text}]" if p.chip else p.text for p in sentence)


def _safe(say: Callable[[T], str], fallback: Callable[[T], str]) -> Callable[[T], str]:
    """A sentence function that falls back to the DSL text: a card always has something to show."""
    def safely(item: T) -> str:
        try:
            return say(item)
        except Exception:  # an unforeseen shape is shown as its text, never a crash
            return fallback(item)
    return safely


# --------------------------------------------------------------------------- small words


def duration(seconds: int) -> str:
    """`1h30m` as "1 hour 30 minutes": the units the DSL canonicalises to, in words."""
    if seconds <= 0:
        return "no time"
    words = []
    for size, unit in ((DAY, "day"), (HOUR, "hour"), (MINUTE, "minute"), (1, "second")):
        count, seconds = divmod(seconds, size)
        if count:
            words.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(words)


def _per(seconds: int) -> str:
    return "day" if seconds == DAY else "hour" if seconds == HOUR else duration(seconds)


def field_name(path: m.Path, in_event: bool = False, owner: bool = True) -> str:
    """`user.total_spend` is "total spend"; `event.category` is "category" where the sentence is
    already about the event, else "the event's category" (and the person's fields are then
    "their ..."); `trial.code` is "trial code". Without `owner`, the bare words (for chips)."""
    parts = list(path.parts)
    root = parts[0]
    if root in ("user", "event") and len(parts) > 1:
        parts = parts[1:]
    elif root == "user":
        return "the person"
    their = "their " if root == "user" and in_event and owner else ""
    if parts[-1].endswith("_at") and len(parts[-1]) > 3:  # `last_purchase_at` is a moment
        parts[-1] = parts[-1][:-3]
    words = " ".join(part.replace("_", " ").strip() or part for part in parts)
    return f"the event's {words}" if root == "event" and not in_event and owner else their + words


def value(lit: m.Lit, quoted: bool = False) -> str:
    v = lit.value
    if v is None:
        return "empty"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return f"“{v}”" if quoted or not v or v != v.strip() or " " in v else v
    return format_number(v)


# --------------------------------------------------------------------------- events

@dataclass(frozen=True)
class _Verb:
    base: str  # "buy {x}": they buy; "{x}" is what, from the event's `key` field
    third: str  # someone buys
    done: str  # has bought
    key: str | None = None  # the event field that names what
    default: str = ""  # what, when no field names it

    def say(self, form: str, what: str | None) -> str:
        text = getattr(self, form)
        return " ".join(text.replace("{x}", what if what is not None else self.default).split())


VERBS = {
    "purchase": _Verb("buy {x}", "buys {x}", "bought {x}", "category", "something"),
    "add_to_cart": _Verb("add {x} to the cart", "adds {x} to the cart", "added {x} to the cart", "category",
                         "something"),
    "product_viewed": _Verb("look at {x}", "looks at {x}", "looked at {x}", "category", "a product"),
    "cart_viewed": _Verb("look at the cart", "looks at the cart", "looked at the cart"),
    "signup": _Verb("sign up", "signs up", "signed up", "source"),
    "coupon_redeemed": _Verb("use a coupon {x}", "uses a coupon {x}", "used a coupon {x}", "pool"),
    "account_bound": _Verb("bind their account", "binds their account", "bound their account"),
    "points_credited": _Verb("get points", "gets points", "got points"),
    "points_redeemed": _Verb("spend points", "spends points", "spent points"),
}
_WHAT_PREFIX = {"signup": "via ", "coupon_redeemed": "from "}


def _conjuncts(expr: m.Expr) -> list[m.Expr]:
    if isinstance(expr, m.Binary) and expr.op == "and":
        return [*_conjuncts(expr.left), *_conjuncts(expr.right)]
    return [expr]


def _and(parts: list[m.Expr]) -> m.Expr:
    out = parts[0]
    for part in parts[1:]:
        out = m.Binary("and", out, part)
    return out


def event_phrase(event: str, where: m.Expr | None, form: str) -> str:
    """What someone does, in `form` ("base", "third", "done"): "buys care solution" for a
    purchase whose category is care_solution; "does Viewed Pricing Page where ..." otherwise."""
    verb = VERBS.get(event)
    rest = _conjuncts(where) if where is not None else []
    what = None
    if verb is not None and verb.key is not None:
        for index, part in enumerate(rest):
            if (isinstance(part, m.Compare) and part.op == "==" and isinstance(part.left, m.Path)
                    and part.left.parts == ("event", verb.key) and isinstance(part.right, m.Lit)
                    and isinstance(part.right.value, str)):
                named = part.right.value
                what = _WHAT_PREFIX.get(event, "") + (named.replace("_", " ") if verb.key == "category" else named)
                del rest[index]
                break
    if verb is not None:
        head = verb.say(form, what)
    else:
        does = {"base": "do", "third": "does", "done": "done"}[form]
        head = f"{does} {event or '“”'}"
    return head + (f" where {condition(_and(rest), in_event=True)}" if rest else "")


# --------------------------------------------------------------------------- conditions

_COMPARE_WORDS = {"==": "is", "!=": "is not", "<": "is less than", "<=": "is at most", ">": "is more than",
                  ">=": "is at least"}
_TIMES_WORDS = {">=": "at least", ">": "more than", "<=": "at most", "<": "fewer than", "==": "exactly",
                "!=": "not exactly"}
_ARITHMETIC = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def _is_tags(expr: m.Expr) -> bool:
    return isinstance(expr, m.Path) and expr.parts == ("user", "tags")


def _text_lit(expr: m.Expr) -> str | None:
    return expr.value if isinstance(expr, m.Lit) and isinstance(expr.value, str) else None


def _number(expr: m.Expr) -> int | float | None:
    if isinstance(expr, m.Lit) and isinstance(expr.value, int | float) and not isinstance(expr.value, bool):
        return expr.value
    return None


def _window(history: m.History) -> str:
    return "" if history.window_seconds is None else f" in the last {duration(history.window_seconds)}"


def _history_compare(history: m.History, op: str, count: int | float) -> str:
    done = event_phrase(history.event, history.where, "done")
    if count == 0 and op in ("==", "<=", "<"):
        done = done.replace("something", "anything")
        return f"has never {done}" if history.window_seconds is None else f"has not {done}{_window(history)}"
    if count == 0 and op in ("!=", ">"):
        return f"has {done}{_window(history)}"
    times = "once" if count == 1 else "twice" if count == 2 else f"{format_number(count)} times"
    return f"has {done} {_TIMES_WORDS[op]} {times}{_window(history)}"


def _compare(expr: m.Compare, in_event: bool) -> str:
    left, right, op = expr.left, expr.right, expr.op
    tag = _text_lit(left) if op in ("in", "not in") and _is_tags(right) else None
    if tag is None and op == "contains" and _is_tags(left):
        tag = _text_lit(right)
    if tag is not None:
        return f"{'does not have' if op == 'not in' else 'has'} tag {value(m.Lit(tag))}"
    count = _number(right)
    if isinstance(left, m.History) and count is not None and op in _TIMES_WORDS:
        return _history_compare(left, op, count)
    if isinstance(right, m.Lit) and right.value is None and op in ("==", "!="):
        return f"{term(left, in_event)} {'is empty' if op == '==' else 'is set'}"
    if op in ("in", "not in") and isinstance(right, m.ListExpr):
        return f"{term(left, in_event)} is {'one' if op == 'in' else 'none'} of {term(right, in_event)}"
    words = _COMPARE_WORDS.get(op) or {"in": "is in", "not in": "is not in", "contains": "contains"}[op]
    return f"{term(left, in_event)} {words} {term(right, in_event)}"


def _grouped(expr: m.Expr, within: str, in_event: bool) -> str:
    """A child of `and`/`or` in words, in brackets when it is the other of the two."""
    text = condition(expr, in_event)
    return f"({text})" if isinstance(expr, m.Binary) and expr.op in ("and", "or") and expr.op != within else text


def condition(expr: m.Expr, in_event: bool = False) -> str:
    """A condition as words: `user.total_spend >= 1000` is "total spend is at least 1000"."""
    if isinstance(expr, m.Binary) and expr.op in ("and", "or"):
        return (f"{_grouped(expr.left, expr.op, in_event)} {expr.op} "
                f"{_grouped(expr.right, expr.op, in_event)}")
    if isinstance(expr, m.Compare):
        return _compare(expr, in_event)
    if isinstance(expr, m.Unary) and expr.op == "not":
        inner = expr.operand
        if isinstance(inner, m.Call) and inner.name == "exists" and len(inner.args) == 1:
            return f"has no {term(inner.args[0], in_event)}"
        return f"not ({condition(inner, in_event)})"
    if isinstance(expr, m.Call) and expr.name == "exists" and len(expr.args) == 1:
        return f"has {term(expr.args[0], in_event)}"
    if isinstance(expr, m.Path):
        return f"{term(expr, in_event)} is set"
    if isinstance(expr, m.History):
        return f"has {event_phrase(expr.event, expr.where, 'done')}{_window(expr) or ' before'}"
    return term(expr, in_event)


def term(expr: m.Expr, in_event: bool = False) -> str:
    """A value inside a condition: a field, a literal, a calculation."""
    if isinstance(expr, m.Lit):
        return value(expr)
    if isinstance(expr, m.Path):
        return field_name(expr, in_event)
    if isinstance(expr, m.Dur):
        return duration(expr.seconds)
    if isinstance(expr, m.ListExpr):
        return ", ".join(term(item, in_event) for item in expr.items) or "nothing"
    if isinstance(expr, m.ObjectExpr):
        return ", ".join(key.replace("_", " ") for key, _ in expr.items) or "nothing"
    if isinstance(expr, m.History):
        return f"times they have {event_phrase(expr.event, expr.where, 'done')}{_window(expr) or ' ever'}"
    if isinstance(expr, m.Call):
        return _call(expr, in_event)
    if isinstance(expr, m.Unary):
        if expr.op == "-":
            return f"minus {term(expr.operand, in_event)}"
        return condition(expr, in_event)
    if isinstance(expr, m.Binary) and expr.op in _ARITHMETIC:
        def side(e: m.Expr) -> str:
            text = term(e, in_event)
            return f"({text})" if isinstance(e, m.Binary) else text
        return f"{side(expr.left)} {_ARITHMETIC[expr.op]} {side(expr.right)}"
    return condition(expr, in_event)


def _call(expr: m.Call, in_event: bool) -> str:
    args = [term(a, in_event) for a in expr.args]
    if expr.name == "now" and not args:
        return "now"
    if len(args) == 1:
        say = {"days_since": "days since {}", "lower": "{} (in lower case)", "upper": "{} (in upper case)",
               "len": "number of {}", "exists": "{} exists"}.get(expr.name)
        if say is not None:
            return say.format(args[0])
    return format_expr(expr)


# --------------------------------------------------------------------------- messages

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def placeholder(inner: str) -> str:
    """`user.first_name | default('您好')` is "first name"; anything else is shown as written."""
    head = inner.split("|", 1)[0].strip()
    if _DOTTED.fullmatch(head):
        return field_name(m.Path(tuple(head.split("."))), owner=False)
    return inner.strip() or "…"


def message(text: str) -> Sentence:
    """Message text with its placeholders as chips; the words around them are kept as written."""
    parts: list[Part] = []
    at = 0
    for found in _PLACEHOLDER.finditer(text):
        if found.start() > at:
            parts.append(Part(text[at:found.start()]))
        parts.append(Part(placeholder(found.group(1)), chip=True))
        at = found.end()
    if at < len(text):
        parts.append(Part(text[at:]))
    return tuple(parts) or (Part("(no text)"),)


# --------------------------------------------------------------------------- settings

_WEEKDAY_BY_CRON = {"0": "Sunday", "1": "Monday", "2": "Tuesday", "3": "Wednesday", "4": "Thursday",
                    "5": "Friday", "6": "Saturday", "7": "Sunday", "sun": "Sunday", "mon": "Monday",
                    "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday", "sat": "Saturday"}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def schedule(cron: str) -> str:
    """The common cron shapes in words ("Every Thursday at 10:00"); the rest as the cron text."""
    fields = _MACROS.get(cron.strip().lower(), cron).split()
    if len(fields) == 5 and ascii_digits(fields[0]):
        minute, hour, dom, month, dow = fields
        if hour == "*" and dom == month == dow == "*":
            return f"Every hour at minute {int(minute)}"
        if ascii_digits(hour) and month == "*":
            at = f"{int(hour):02d}:{int(minute):02d}"
            if dom == "*" and dow == "*":
                return f"Every day at {at}"
            if dom == "*" and dow.lower() in _WEEKDAY_BY_CRON:
                return f"Every {_WEEKDAY_BY_CRON[dow.lower()]} at {at}"
            if dom == "*" and dow == "1-5":
                return f"Every weekday at {at}"
            if ascii_digits(dom) and dow == "*":
                return f"On day {int(dom)} of every month at {at}"
    return f"On the schedule “{cron}”"


def _trigger(trigger: m.Trigger) -> str:
    match trigger:
        case m.EventTrigger(event=event, where=where):
            return f"When someone {event_phrase(event, where, 'third')}"
        case m.ConditionTrigger(condition=cond):
            return f"When this becomes true: {condition(cond)}"
        case m.ScheduleTrigger(cron=cron, zone=zone):
            zone_words = " in the journey's time zone" if zone == "journey" else ""
            return f"{schedule(cron)}{zone_words}, for everyone who fits"
    return "When another system adds them (API)"


def _audience(audience: m.Audience) -> str:
    return f"Who: {condition(audience.condition)}"


def _entry(entry: m.Entry) -> str:
    if entry.mode == "once_every":
        return f"Can enter again after {duration(entry.every_seconds or 0)}"
    return "Can enter again every time" if entry.mode == "always" else "Enters only once"


def _exit_rule(rule: m.ExitRule) -> str:
    if isinstance(rule, m.ExitOnEvent):
        return f"Leaves when they {event_phrase(rule.event, rule.where, 'base')}"
    return f"Leaves when this becomes true: {condition(rule.condition)}"


def _goal(goal: m.Goal) -> str:
    leaves = ", then leaves" if goal.then_exit else ""
    return f"Goal: {goal.name or '(no name)'} within {duration(goal.within_seconds)}{leaves}"


def _setting(setting: m.Setting) -> str:
    match setting:
        case m.EventTrigger() | m.ConditionTrigger() | m.ScheduleTrigger() | m.ApiTrigger():
            return _trigger(setting)
        case m.Audience():
            return _audience(setting)
        case m.Entry():
            return _entry(setting)
        case m.ExitOnEvent() | m.ExitWhen():
            return _exit_rule(setting)
        case m.Goal():
            return _goal(setting)
        case m.QuietHours(start=start, end=end):
            return f"No messages {start}–{end}"
        case m.TimeZone(name=name):
            return f"Time zone: {name}"
        case m.FrequencyCap(count=count, per_seconds=per, channel=channel):
            noun = {"sms": "SMS", "push": "push message"}.get(channel or "", "message")
            plural = "" if count == 1 or noun == "SMS" else "s"
            return f"At most {count} {noun}{plural} per {_per(per)}"
    return format_setting(setting)


setting = _safe(_setting, format_setting)
"""Any setting in words, its DSL text if it cannot be said."""


# --------------------------------------------------------------------------- steps

_CHANNEL = {"sms": "SMS", "push": "push"}


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    return host or url


def _send(step: m.Send) -> Sentence:
    channel = _CHANNEL.get(step.channel, step.channel)
    if step.text is None:
        head: Sentence = (Part(f"Send {channel}: template {value(m.Lit(step.template or ''))}"),)
    else:
        head = (Part(f"Send {channel}: "), *message(step.text))
    if step.title is None:
        return head
    return (*head, Part(" — titled “"), *message(step.title), Part("”"))


def _update(step: m.UpdateProfile) -> str:
    name = field_name(step.path)
    if step.op == "+=":
        return f"Add {term(step.value)} to {name}"
    if step.op == "-=":
        return f"Take {term(step.value)} from {name}"
    shown = value(step.value, quoted=True) if isinstance(step.value, m.Lit) else term(step.value)
    return f"Set {name} to {shown}"


def _step_text(step: m.Step) -> str:
    match step:
        case m.Wait(seconds=seconds, calendar=calendar):
            return f"Wait {duration(seconds)}" + (" (same time of day)" if calendar else "")
        case m.WaitUntil(time=time, weekday=weekday):
            return f"Wait until {time}" + (f" ({weekday.capitalize()})" if weekday else "")
        case m.WaitForEvent(event=event, where=where, timeout_seconds=timeout):
            return f"Wait up to {duration(timeout)} for them to {event_phrase(event, where, 'base')}"
        case m.If(arms=arms):
            return f"If {condition(arms[0].condition)}"
        case m.Split(name=name):
            return f"Split people at random: {name}" if name else "Split people at random"
        case m.IssueCoupon(pool=pool, result=result):
            return f"Give a coupon from {pool}" + (f" (as {result})" if result else "")
        case m.CallWebhook(url=url, body=body, result=result):
            sending = f", sending {term(body)}" if body is not None and body.items else ""
            return f"Call {_host(url)}{sending}" + (f" (answer as {result})" if result else "")
        case m.UpdateProfile():
            return _update(step)
        case m.Tag(action=action, tag=tag):
            return f"{action.capitalize()} tag {value(m.Lit(tag))}"
        case m.ExitStep():
            return "End the journey here"
        case m.Pass():
            return "Do nothing"
    return step_header(step).removesuffix(":")


def _dsl(step: m.Step) -> str:
    return step_header(step).removesuffix(":")


_step_text_safe = _safe(_step_text, _dsl)


def step(item: m.Step) -> Sentence:
    """A step's card sentence; a message's placeholders are chips."""
    if isinstance(item, m.Send):
        try:
            return _send(item)
        except Exception:  # see `_safe`
            return (Part(_dsl(item)),)
    return (Part(_step_text_safe(item)),)


# --------------------------------------------------------------------------- branches

def split_arm_titles(split: m.Split) -> list[str]:
    """"A · 45%", "B · 45%", "Control · 10%": letters by position, as the step ids and the
    report name unlabelled arms (the control keeps its place in the lettering)."""
    return [("Control" if arm.control else chr(ord("A") + index % 26)) + f" · {format_percent(arm.percent)}"
            for index, arm in enumerate(split.arms)]


def _if_arm(cond: m.Expr) -> str:
    text = condition(cond)
    return text[:1].upper() + text[1:]


if_arm_title = _safe(_if_arm, format_expr)
"""An `if`/`elif` arm's title: its condition, capitalised."""

OTHERWISE = "Otherwise"
RECEIVED = "Received"
TIMED_OUT = "Timed out"


# --------------------------------------------------------------------------- problems

_LINE_MENTION = re.compile(r"(;\s*|,\s*|\s*\()?\b(the first is )?on line \d+\)?|\bline \d+:?\s*", re.I)


def problem(message_text: str, hint: str | None, syntax: bool, about: str = "step") -> str:
    """A problem on a card, without line numbers (the DSL panel's list keeps them): a syntax
    error says the step's text does not read, and how to fix it when the parser knows."""
    if syntax:
        fix = (hint or "").replace("`", "")
        return f"This {about}'s text does not read" + (f": {fix}" if fix else "; fix it in the journey text")
    words = _LINE_MENTION.sub("", message_text).strip()
    return words.removeprefix("message: ") or message_text
