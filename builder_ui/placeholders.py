"""What a message can say at its step, and the message in plain words.

A message may use the profile, the trigger's event, and the results named by coupon and
webhook steps that come before it on its path. Which names are defined where is the
validator's business (`dsl.validate`): the scopes here are recorded while the validator
itself walks the journey, so the "Insert…" menu, the preview and the check can never
disagree about whether `{{ trial.code }}` is usable at a step.

Pure: the fields and templates known outside the journey are handed in.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dsl import model as m
from dsl.ids import walk_steps
from dsl.validate import Catalog, _Checker, _Flow

from .field_catalog import TAGS, Fields, label_of
from .forms import FieldError

COUPON_FIELDS = (("code", "coupon code"), ("expires_at", "coupon expiry date"))
REPLY_FIELDS = (("status", "reply status"), ("body", "reply"))
NAMED_FIELD = "*"  # the menu's "a field you name…" of a reply: the name is typed beside the menu
SNIPPET = 60  # characters of a template's text shown beside its name
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SIMPLE = re.compile(r"""^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*"""
                     r"""(?:\|\s*default\(\s*(?:'([^']*)'|"([^"]*)")\s*\)\s*)?$""")
_USER_FIELD = re.compile(r"\buser\.([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Placeholder:
    code: str  # what goes between the braces: "user.first_name"
    label: str  # what a marketer reads: "first name"
    group: str  # the menu's heading: "Profile", "The event", "Coupons", "Replies"


@dataclass(frozen=True)
class Available:
    """What a message at one step can use."""

    placeholders: tuple[Placeholder, ...]
    results: frozenset[str]  # result names defined before the step on every path to it
    traits: frozenset[str]  # known profile fields; empty when nobody knows them
    journey: m.Journey = field(compare=False, repr=False)

    def label(self, code: str) -> str:
        for p in self.placeholders:
            if p.code == code:
                return p.label
        return fallback_label(code)


@dataclass(frozen=True)
class Segment:
    text: str
    chip: bool  # a placeholder, shown as "[first name]"


@dataclass(frozen=True)
class TemplateOption:
    name: str
    text: str | None  # the template's text when the settings hold it; None when only named
    found: bool  # False: the step names a template nobody knows


# --------------------------------------------------------------------------- scopes


class _Scopes(_Checker):
    """The validator, remembering the result names in scope at each step it checks."""

    def __init__(self, journey: m.Journey) -> None:
        super().__init__(journey, [], Catalog())
        self.scopes: dict[int, frozenset[str]] = {}

    def step(self, step: m.Step, scope: frozenset[str]) -> _Flow:
        self.scopes[id(step)] = scope
        return super().step(step, scope)


def scope_at(journey: m.Journey, step: m.Step) -> frozenset[str]:
    """The result names usable at `step` (a step of `journey`); none for a step never reached."""
    walker = _Scopes(journey)
    walker.block(journey.steps, frozenset())
    return walker.scopes.get(id(step), frozenset())


def _result_kinds(journey: m.Journey) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for step in walk_steps(journey.steps):
        if isinstance(step, m.IssueCoupon | m.CallWebhook) and step.result:
            kinds.setdefault(step.result, "coupon" if isinstance(step, m.IssueCoupon) else "reply")
    return kinds


def _texts(journey: m.Journey) -> Iterable[str]:
    for step in walk_steps(journey.steps):
        if isinstance(step, m.Send):
            yield from (t for t in (step.text, step.title) if t)
        elif isinstance(step, m.CallWebhook):
            yield step.url


def _reply_fields(journey: m.Journey, name: str) -> list[str]:
    """A reply's fields the journey already uses (`store.name`): a reply's shape is the
    service's, so the builder knows only those besides status and body."""
    used = re.compile(rf"\b{re.escape(name)}\.([A-Za-z_]\w*)")
    found = {f for text in _texts(journey) for f in used.findall(text)}
    return sorted(found - {f for f, _ in REPLY_FIELDS})


def trigger_events(journey: m.Journey) -> list[str]:
    return sorted({t.event for t in journey.triggers if isinstance(t, m.EventTrigger)})


def event_in_steps(journey: m.Journey) -> bool:
    """The validator's rule: steps see the event only when every trigger is an event."""
    return bool(journey.triggers) and all(isinstance(t, m.EventTrigger) for t in journey.triggers)


def known_traits(fields: Fields) -> frozenset[str]:
    """The profile fields known; empty when only tags are, which every profile has, so that
    an installation without profiles yet does not call every field unknown."""
    names = frozenset(fields.traits)
    return names if names - {TAGS} else frozenset()


def available(journey: m.Journey, step: m.Step, fields: Fields) -> Available:
    """What a message at `step` can use, in menu order."""
    scope = scope_at(journey, step)
    out = [Placeholder(f.path, f.label or label_of(f.name), "Profile")
           for f in fields.all_traits() if f.name != TAGS]
    if event_in_steps(journey):
        props = {f.path: f for event in trigger_events(journey) for f in fields.of_event(event)}
        out += [Placeholder(f.path, f.label or label_of(f.name), "The event") for _, f in sorted(props.items())]
    kinds = _result_kinds(journey)
    for name in sorted(scope):
        if kinds.get(name) == "coupon":
            out += [Placeholder(f"{name}.{f}", f"{name} {label}", "Coupons") for f, label in COUPON_FIELDS]
        else:
            out += [Placeholder(f"{name}.{f}", f"{name} {label}", "Replies") for f, label in REPLY_FIELDS]
            out += [Placeholder(f"{name}.{f}", f"{name} reply {label_of(f)}", "Replies")
                    for f in _reply_fields(journey, name)]
            # A reply's shape is the other system's: the marketer names the field it answers with.
            out.append(Placeholder(f"{name}.{NAMED_FIELD}", f"{name} reply: a field you name…", "Replies"))
    return Available(tuple(out), scope, known_traits(fields), journey)


# --------------------------------------------------------------------------- the message in words


def fallback_label(code: str) -> str:
    """Plain words for a placeholder no menu lists: `user.home_store` reads "home store"."""
    root, _, rest = code.partition(".")
    if root in ("user", "event") and rest:
        return label_of(rest)
    return " ".join(label_of(part) for part in code.split("."))


def chips(text: str, where: Available | None = None) -> list[Segment]:
    """The message with each `{{ ... }}` as a chip in plain words; what is not a plain
    placeholder (a filter other than default, an expression) shows as written."""
    out: list[Segment] = []
    last = 0
    for found in _TAG.finditer(text):
        if found.start() > last:
            out.append(Segment(text[last:found.start()], False))
        out.append(Segment(_chip_words(found.group(1), where), True))
        last = found.end()
    if last < len(text):
        out.append(Segment(text[last:], False))
    return out


def _chip_words(inner: str, where: Available | None) -> str:
    simple = _SIMPLE.match(inner)
    if simple is None:
        return inner.strip()
    code, single, double = simple.groups()
    label = where.label(code) if where is not None else fallback_label(code)
    default = single if single is not None else double
    return f"{label}, or “{default}”" if default is not None else label


def unknown_traits(text: str, name: str, where: Available) -> list[FieldError]:
    """Profile fields the message names that nobody knows, with the likeliest one meant."""
    if not where.traits:
        return []
    errors = []
    for tag in _TAG.findall(text):
        for trait in dict.fromkeys(_USER_FIELD.findall(tag)):
            if trait in where.traits:
                continue
            close = difflib.get_close_matches(trait, sorted(where.traits), n=1)
            hint = f"{label_of(close[0])}?" if close else "no profile has it yet"
            errors.append(FieldError(name, f"no profile field “{label_of(trait)}”", hint))
    return errors


def template_problems(text: str, what: str, where: Available) -> list[tuple[str, str | None]]:
    """The problems the check reports for this message text at this step, word for word:
    the validator's own template check, with the step's scope."""
    checker = _Checker(where.journey, [], Catalog())
    checker.template_text(text, m.Loc(1, 1), where.results, what)
    return [(p.message, p.hint) for p in checker.problems]


# --------------------------------------------------------------------------- templates


def template_options(texts: Mapping[str, str], names: Iterable[str], current: str) -> list[TemplateOption]:
    """The templates a send can use: those with their text (the action settings') and those
    only named (the catalog's), plus the step's own when nobody knows it."""
    known = {**{n: None for n in names}, **dict(texts)}
    options = [TemplateOption(n, _snippet(t), True) for n, t in sorted(known.items())]
    if current and current not in known:
        options.append(TemplateOption(current, None, False))
    return options


def _snippet(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


# --------------------------------------------------------------------------- typed values' choices


def value_choices(where: Available, fields: Fields) -> dict[str, list[tuple[str, str]]]:
    """What the update and webhook forms offer to pick, by kind of value: profile fields,
    the trigger event's properties, and the earlier steps' results (value, words). A kind
    with nothing to pick at this step is left out."""
    def listed(group: str, prefix: str) -> list[tuple[str, str]]:
        return [(p.code.removeprefix(prefix), p.label) for p in where.placeholders
                if p.group == group and not p.code.endswith(f".{NAMED_FIELD}")]  # the selects have "other…"

    out = {"user": [(f.name, f.label or label_of(f.name)) for f in fields.all_traits() if f.name != TAGS]}
    if event_in_steps(where.journey):  # elsewhere the check refuses event.*: not offered
        out["event"] = listed("The event", "event.")
    if where.results:
        out["result"] = listed("Coupons", "") + listed("Replies", "")
    return out


def message_problems(form: Mapping[str, str], where: Available) -> list[FieldError]:
    """The message form's unknown profile fields, on the field that names them."""
    if form.get("kind") not in ("sms", "push") or form.get("content") == "template":
        return []
    return [e for name in ("text", "title") for e in unknown_traits(form.get(name, ""), name, where)]
