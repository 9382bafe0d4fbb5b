"""What the publish review says, in the marketer's words: who can enter, what goes out, the
manners, and what blocks publishing. Pure: the caller brings what storage knows (the pools'
free codes, the known templates, the audience estimate) and the validator's problems.

Why a review at all: a journey that issues from a pool that does not exist, or that sends a
template nobody wrote, passes the DSL's own checks (the validator cannot know what exists in
this installation) and would fail quietly at run time, person by person. The review is where
those facts meet the text, before anyone is entered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from dsl import model as m
from dsl.formatter import format_expr
from dsl.ids import assign_ids, walk_steps
from dsl.reads import expr_reads

from . import sentences

CHANNEL_NAMES = {"sms": "SMS", "push": "push"}
_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


@dataclass(frozen=True)
class Estimate:
    """How many profiles matched the audience among those checked (all, or a sample)."""

    matching: int
    checked: int
    population: int

    @property
    def sampled(self) -> bool:
        return self.checked < self.population

    @property
    def scaled(self) -> int:
        """The matching count over the whole population: exact when all were checked."""
        if not self.sampled or self.checked == 0:
            return self.matching
        return round(self.matching * self.population / self.checked)


@dataclass(frozen=True)
class Problem:
    """One problem to fix; `step` is the step it is about (None: the journey's settings)."""

    message: str
    step: str | None = None


@dataclass(frozen=True)
class Message:
    step: str
    channel: str
    content: str  # "“Hi {{ user.first_name }}”" or "the template “lens_intro”"
    coupons: tuple[str, ...]  # the pools whose codes the text shows


@dataclass(frozen=True)
class Facts:
    """What the review needs from outside the text."""

    pools: Mapping[str, int]  # every existing pool, with its free codes
    templates: frozenset[str] | None  # None: no catalog configured, templates cannot be checked
    estimate: Estimate | None  # None: not computed (the audience reads the trigger's event)
    installation_zone: str


@dataclass(frozen=True)
class Review:
    entry: tuple[str, ...]
    audience: str
    estimate: str
    messages: tuple[Message, ...]
    coupons: tuple[str, ...]
    manners: tuple[str, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]

    @property
    def blocked(self) -> bool:
        return bool(self.problems)


# --------------------------------------------------------------------------- words


def plain_duration(seconds: int) -> str:
    """`1 day 12 hours`: a duration as a marketer says it (the DSL writes `1d12h`)."""
    parts = []
    for name, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def about(n: int) -> str:
    """A scaled count rounded to three significant figures (12,400), so it does not claim
    a precision a sample does not have."""
    if n < 1000:
        return f"{n:,}"
    digits = len(str(n)) - 3
    return f"{round(n, -digits):,}"


def estimate_sentence(estimate: Estimate | None, has_audience: bool) -> str:
    if estimate is None:
        return "The audience reads the event that triggers the journey, so it cannot be estimated in advance."
    if estimate.population == 0:
        return "There are no profiles yet, so nobody would match now."
    what = "match the audience" if has_audience else "can enter (there is no audience condition)"
    if estimate.sampled:
        return (f"About {about(estimate.scaled)} of {estimate.population:,} profiles {what} now, "
                f"from a sample of {estimate.checked:,}.")
    return f"{estimate.matching:,} of {estimate.population:,} profiles {what} now."


def zone_in_force(journey: m.Journey, installation_zone: str) -> str:
    """The zone used for people whose profile has none (docs/engine.md: the person's zone,
    else the journey's, else the installation's), named with where it comes from."""
    if journey.timezone is not None:
        return f"{journey.timezone.name} (the journey's time zone)"
    return f"{installation_zone} (the installation's default: the journey sets none)"


def condition_words(expr: m.Expr) -> str:
    """A condition in words (the canvas's own sentences), its DSL text if it cannot be said."""
    try:
        return sentences.condition(expr)
    except Exception:  # an unforeseen shape is shown as its text: the review must always open
        return format_expr(expr)


def trigger_sentence(trigger: m.Trigger, journey_zone: str) -> str:
    match trigger:
        case m.EventTrigger(event=event, where=where):
            return f"People who {sentences.event_phrase(event, where, 'base')}"
        case m.ConditionTrigger(condition=condition):
            return f"People for whom this becomes true: {condition_words(condition)}"
        case m.ScheduleTrigger(cron=cron, zone="journey"):
            return (f"{sentences.schedule(cron)}, at the same moment for everyone ({journey_zone}): "
                    "everyone in the audience")
        case m.ScheduleTrigger(cron=cron):
            return f"{sentences.schedule(cron)}, at each person's local time: everyone in the audience"
        case m.ApiTrigger():
            return "People entered by your systems through the API"
    raise TypeError(f"not a trigger: {trigger!r}")


def _entry_sentence(entry: m.Entry | None) -> str:
    if entry is None or entry.mode == "once":
        return "A person enters once, ever."
    if entry.mode == "always":
        return "A person may enter again every time (one visit at a time)."
    return f"A person may enter again at most once every {plain_duration(entry.every_seconds or 0)}."


def cap_sentence(cap: m.FrequencyCap) -> str:
    where = f"on {CHANNEL_NAMES.get(cap.channel, cap.channel)}" if cap.channel else "on all channels"
    noun = "message" if cap.count == 1 else "messages"
    period = plain_duration(cap.per_seconds).removeprefix("1 ")  # "per day", not "per 1 day"
    return f"At most {cap.count} {noun} {where} per {period} per person."


# --------------------------------------------------------------------------- the review


def review(journey: m.Journey, validator: list[Problem], facts: Facts) -> Review:
    """The review of `journey` as it would be published."""
    ids = assign_ids(journey)
    steps = list(walk_steps(journey.steps))
    journey_zone = journey.timezone.name if journey.timezone else facts.installation_zone
    audience = (f"Only people who fit: {condition_words(journey.audience.condition)}." if journey.audience
                else "Everyone: there is no audience condition.")
    reads_event = journey.audience is not None and _reads_event(journey.audience.condition)
    estimate = None if reads_event else facts.estimate
    return Review(
        entry=(*(trigger_sentence(t, journey_zone) for t in journey.triggers), _entry_sentence(journey.entry)),
        audience=audience,
        estimate=estimate_sentence(estimate, journey.audience is not None),
        messages=tuple(_messages(steps, ids)),
        coupons=tuple(_coupon_lines(steps, facts.pools)),
        manners=tuple(_manners(journey, facts.installation_zone)),
        problems=(*validator, *_blocking(journey, steps, ids, facts)),
        warnings=tuple(_warnings(journey, steps, estimate, facts)),
    )


def _reads_event(expr: m.Expr) -> bool:
    """Whether a condition reads `event.*` outside a `count of` (whose filter reads the counted
    events): such an audience depends on the trigger's event and has no answer in advance."""
    stack: list[m.Expr] = [expr]
    while stack:
        node = stack.pop()
        match node:
            case m.Path(parts=parts) if parts[0] == "event":
                return True
            case m.History():
                continue
            case m.Call(args=items) | m.ListExpr(items=items):
                stack.extend(items)
            case m.Unary(operand=operand):
                stack.append(operand)
            case m.Binary(left=left, right=right) | m.Compare(left=left, right=right):
                stack += [left, right]
            case m.ObjectExpr(items=pairs):
                stack.extend(value for _, value in pairs)
    return False


def _messages(steps: list[m.Step], ids: dict[int, str]) -> Iterator[Message]:
    pools_by_result = {s.result: s.pool for s in steps if isinstance(s, m.IssueCoupon) and s.result}
    for step in steps:
        if not isinstance(step, m.Send):
            continue
        if step.template is not None:
            content = f"the template “{step.template}”"
            shown = ""
        else:
            content = f"“{sentences.plain(sentences.message(step.text or ''))}”"
            shown = f"{step.title or ''} {step.text or ''}"
        used = tuple(sorted({pool for name, pool in pools_by_result.items()
                             if re.search(rf"\b{re.escape(name)}\s*\.", shown)}))
        yield Message(ids[id(step)], CHANNEL_NAMES.get(step.channel, step.channel), content, used)


def _pool_names(steps: list[m.Step]) -> list[str]:
    return sorted({s.pool for s in steps if isinstance(s, m.IssueCoupon)})


def _coupon_lines(steps: list[m.Step], pools: Mapping[str, int]) -> Iterator[str]:
    for name in _pool_names(steps):
        free = pools.get(name)
        yield f"{name}: does not exist" if free is None else f"{name}: {free:,} free codes"


def _manners(journey: m.Journey, installation_zone: str) -> Iterator[str]:
    zone = zone_in_force(journey, installation_zone)
    if journey.quiet_hours is not None:
        quiet = journey.quiet_hours
        yield (f"Quiet hours: nothing is sent from {quiet.start} to {quiet.end}, in each person's own time "
               "zone; messages wait until the quiet hours end.")
    else:
        yield "No quiet hours: messages go out at any time of day."
    yield f"Time zone for people whose profile has none: {zone}."
    if journey.caps:
        yield from (cap_sentence(cap) for cap in journey.caps)
    else:
        yield "No frequency cap."


def _blocking(journey: m.Journey, steps: list[m.Step], ids: dict[int, str], facts: Facts) -> Iterator[Problem]:
    if all(isinstance(s, m.Pass) for s in steps):
        yield Problem("The journey has no steps yet: add a message or another step before publishing.")
    for step in steps:
        if isinstance(step, m.IssueCoupon):
            yield from _pool_problem(step, ids[id(step)], facts.pools)
        elif isinstance(step, m.Send) and step.template is not None and facts.templates is not None \
                and step.template not in facts.templates:
            yield Problem(f"The template “{step.template}” does not exist: choose a template that exists, "
                          "or write the text in the step.", ids[id(step)])


def _pool_problem(step: m.IssueCoupon, step_id: str, pools: Mapping[str, int]) -> Iterator[Problem]:
    free = pools.get(step.pool)
    if free is None:
        yield Problem(f"The coupon pool “{step.pool}” does not exist: create it on the Coupon pools page "
                      "and add codes.", step_id)
    elif free == 0:
        yield Problem(f"The coupon pool “{step.pool}” has no free codes: add codes on the Coupon pools page.",
                      step_id)


def _warnings(journey: m.Journey, steps: list[m.Step], estimate: Estimate | None, facts: Facts) -> Iterator[str]:
    if journey.quiet_hours is not None and journey.timezone is None:
        yield (f"Quiet hours are set but the journey has no time zone: for people without one of their own, "
               f"they are read in the installation's zone, {facts.installation_zone}.")
    if estimate is not None and estimate.population > 0 and estimate.matching == 0:
        yield "No profile matches the audience now: nobody would enter until profiles change."
    templates = sorted({s.template for s in steps if isinstance(s, m.Send) and s.template is not None})
    if templates and facts.templates is None:
        names = ", ".join(f"“{t}”" for t in templates)
        verb, pronoun = ("exists", "it") if len(templates) == 1 else ("exist", "them")
        yield (f"Templates cannot be checked: no template catalog is set up here. Make sure {names} "
               f"{verb} before people reach {pronoun}.")


def used_history(journey: m.Journey) -> frozenset[str]:
    """The event names the audience counts (`count of "purchase" ...`): what the estimate
    must load for each profile it checks."""
    return expr_reads(journey.audience.condition if journey.audience else None).history
