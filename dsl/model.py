"""The typed, immutable model of a journey: what the parser builds and the formatter prints.

Every node is a frozen dataclass. Source positions (`loc`) and layout (`blank_before`) are
excluded from equality, so `parse(format(model)) == model` holds even though formatting moves
lines around; comments *are* compared, because the formatter must keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as TypingLiteral
from typing import TypeAlias


@dataclass(frozen=True)
class Loc:
    """A 1-based line and column in the source text."""

    line: int = 0
    column: int = 0


NOWHERE = Loc()


def _loc() -> Loc:
    return field(default=NOWHERE, compare=False, repr=False)


# --------------------------------------------------------------------------- expressions

Scalar: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True)
class Lit:
    """A string, number, boolean or null literal."""

    value: Scalar
    loc: Loc = _loc()


@dataclass(frozen=True)
class Dur:
    """A duration literal such as `30d` or `1h30m`, held in seconds."""

    seconds: int
    loc: Loc = _loc()


@dataclass(frozen=True)
class Path:
    """A dotted path: `user.stage`, `event.category`, `trial.code`."""

    parts: tuple[str, ...]
    loc: Loc = _loc()

    @property
    def root(self) -> str:
        return self.parts[0]


@dataclass(frozen=True)
class Call:
    """A call of one of the built-in functions (`exists`, `lower`, `days_since`, ...)."""

    name: str
    args: tuple[Expr, ...]
    loc: Loc = _loc()


UnaryOp: TypeAlias = TypingLiteral["not", "-"]
BinaryOp: TypeAlias = TypingLiteral["or", "and", "+", "-", "*", "/"]
CompareOp: TypeAlias = TypingLiteral["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]


@dataclass(frozen=True)
class Unary:
    op: UnaryOp
    operand: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class Binary:
    """Boolean (`and`, `or`) and arithmetic operators; all left-associative."""

    op: BinaryOp
    left: Expr
    right: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class Compare:
    """A comparison; not associative, so `a < b < c` is a syntax error."""

    op: CompareOp
    left: Expr
    right: Expr
    loc: Loc = _loc()


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr, ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class ObjectExpr:
    """A JSON-like object, used for webhook bodies: `{"points": 100, "user": user.id}`."""

    items: tuple[tuple[str, Expr], ...]
    loc: Loc = _loc()


@dataclass(frozen=True)
class History:
    """`count of "purchase" where ... within 365d`: how often the user did something.

    `window_seconds` is None for `ever`.
    """

    event: str
    where: Expr | None
    window_seconds: int | None
    loc: Loc = _loc()


Expr: TypeAlias = Lit | Dur | Path | Call | Unary | Binary | Compare | ListExpr | ObjectExpr | History


# --------------------------------------------------------------------------- comments


@dataclass(frozen=True)
class Comments:
    """Comments that belong to one node: own-line ones above it, and one at its line's end."""

    leading: tuple[str, ...] = ()
    trailing: str | None = None


NO_COMMENTS = Comments()


def _comments() -> Comments:
    return field(default=NO_COMMENTS)


def _blank() -> bool:
    return field(default=False, compare=False, repr=False)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EventTrigger:
    """`trigger event "signup" where event.channel == "store"`."""

    event: str
    where: Expr | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class ConditionTrigger:
    """`trigger when user.total_spend >= 3000`: enters when the condition *becomes* true."""

    condition: Expr
    comments: Comments = _comments()
    loc: Loc = _loc()


ScheduleZone: TypeAlias = TypingLiteral["user", "journey"]
DEFAULT_SCHEDULE_ZONE: ScheduleZone = "user"


@dataclass(frozen=True)
class ScheduleTrigger:
    """`trigger schedule "0 9 * * *"`: everyone in the audience, at each cron tick.

    `zone` says whose clock the cron reads: "user" (each person at that time of their own
    zone: birthday and morning messages) or "journey" (one instant for everyone, read in the
    journey's zone). None means it was not written: `DEFAULT_SCHEDULE_ZONE`."""

    cron: str
    zone: ScheduleZone | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class ApiTrigger:
    """`trigger api`: users are entered explicitly through the HTTP API."""

    comments: Comments = _comments()
    loc: Loc = _loc()


Trigger: TypeAlias = EventTrigger | ConditionTrigger | ScheduleTrigger | ApiTrigger


@dataclass(frozen=True)
class Audience:
    condition: Expr
    comments: Comments = _comments()
    loc: Loc = _loc()


EntryMode: TypeAlias = TypingLiteral["once", "always", "once_every"]


@dataclass(frozen=True)
class Entry:
    """Re-entry policy. Whatever the mode, a user has at most one active run per journey."""

    mode: EntryMode
    every_seconds: int | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class ExitOnEvent:
    event: str
    where: Expr | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class ExitWhen:
    condition: Expr
    comments: Comments = _comments()
    loc: Loc = _loc()


ExitRule: TypeAlias = ExitOnEvent | ExitWhen


@dataclass(frozen=True)
class Goal:
    """A conversion: an event (`on event`) or a profile condition (`when`) within a window."""

    name: str
    event: str | None
    where: Expr | None
    within_seconds: int
    then_exit: bool = False  # `... within 14d then exit`: reaching the goal ends the run
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class TimeOfDay:
    hour: int
    minute: int
    loc: Loc = _loc()

    def __str__(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True)
class QuietHours:
    start: TimeOfDay
    end: TimeOfDay
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class TimeZone:
    """The default zone for users whose profile has none."""

    name: str
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class FrequencyCap:
    """At most `count` messages per `per_seconds`; `channel` None caps all channels together."""

    count: int
    per_seconds: int
    channel: str | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Wait:
    """`wait 48h` (elapsed time) or, with `calendar`, `wait 2 days`: the same local time of day
    that many days later in the user's zone, whatever DST does in between. A calendar wait's
    `seconds` is its days times 86,400."""

    seconds: int
    calendar: bool = False
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class WaitUntil:
    """Wait until the next time of day (optionally on a weekday), in the user's zone."""

    time: TimeOfDay
    weekday: str | None = None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class Branch:
    """A block of steps with its header's comments: `received:`, `timeout:`, `else:`."""

    steps: tuple[Step, ...]
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class WaitForEvent:
    event: str
    where: Expr | None
    timeout_seconds: int
    received: Branch | None
    timeout: Branch | None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class CondBranch:
    """An `if` or `elif` arm."""

    condition: Expr
    steps: tuple[Step, ...]
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class If:
    arms: tuple[CondBranch, ...]
    otherwise: Branch | None = None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class SplitArm:
    percent: float
    control: bool
    steps: tuple[Step, ...]
    label: str | None = None
    comments: Comments = _comments()
    loc: Loc = _loc()


@dataclass(frozen=True)
class Split:
    """A random split, deterministic per user and journey."""

    name: str
    arms: tuple[SplitArm, ...]
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


CHANNELS = ("sms", "push")


@dataclass(frozen=True)
class Send:
    """Send an inline Jinja2 `text`, or a named `template`; exactly one of them is set."""

    channel: str
    text: str | None = None
    template: str | None = None
    title: str | None = None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class IssueCoupon:
    pool: str
    result: str | None = None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class CallWebhook:
    url: str
    body: ObjectExpr | None = None
    result: str | None = None
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


UpdateOp: TypeAlias = TypingLiteral["=", "+=", "-="]


@dataclass(frozen=True)
class UpdateProfile:
    """`update user.stage = "loyal"`, `update user.points += 100`."""

    path: Path
    op: UpdateOp
    value: Expr
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class Tag:
    """`add tag "vip"` / `remove tag "lapsing"`."""

    action: TypingLiteral["add", "remove"]
    tag: str
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class ExitStep:
    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


@dataclass(frozen=True)
class Pass:
    """Does nothing; a branch that must say so (a control group, an empty `else`)."""

    label: str | None = None
    comments: Comments = _comments()
    blank_before: bool = _blank()
    loc: Loc = _loc()


Step: TypeAlias = (
    Wait | WaitUntil | WaitForEvent | If | Split | Send | IssueCoupon | CallWebhook
    | UpdateProfile | Tag | ExitStep | Pass
)
Setting: TypeAlias = Trigger | Audience | Entry | ExitRule | Goal | QuietHours | TimeZone | FrequencyCap


@dataclass(frozen=True)
class Journey:
    """A whole `.journey` file. Settings are grouped by kind; the formatter prints them in
    this order, so their order in the source does not matter."""

    name: str
    triggers: tuple[Trigger, ...] = ()
    audience: Audience | None = None
    entry: Entry | None = None
    exits: tuple[ExitRule, ...] = ()
    goals: tuple[Goal, ...] = ()
    quiet_hours: QuietHours | None = None
    timezone: TimeZone | None = None
    caps: tuple[FrequencyCap, ...] = ()
    steps: tuple[Step, ...] = ()
    comments: Comments = _comments()
    end_comments: tuple[str, ...] = ()
    loc: Loc = _loc()

    def settings(self) -> tuple[Setting, ...]:
        """All settings, in canonical order."""
        single = (self.audience, self.entry)
        tail = (self.quiet_hours, self.timezone)
        return (
            *self.triggers,
            *(s for s in single if s is not None),
            *self.exits,
            *self.goals,
            *(s for s in tail if s is not None),
            *self.caps,
        )


def child_blocks(step: Step) -> tuple[tuple[Step, ...], ...]:
    """The nested step blocks of a compound step, in source order."""
    if isinstance(step, If):
        blocks = [arm.steps for arm in step.arms]
        if step.otherwise is not None:
            blocks.append(step.otherwise.steps)
        return tuple(blocks)
    if isinstance(step, Split):
        return tuple(arm.steps for arm in step.arms)
    if isinstance(step, WaitForEvent):
        return tuple(b.steps for b in (step.received, step.timeout) if b is not None)
    return ()
