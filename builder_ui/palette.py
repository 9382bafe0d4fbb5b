"""The palette: the kinds of step a marketer can place, and what a new one starts as.

Every new step gets a label (`@sms_2`), because a step's derived id changes when its own text
does (see docs/dsl.md, "Stable step ids"): with a label, rewording a message later does not
detach the users waiting at it, nor its numbers. Defaults are valid DSL, so a journey stays
drawable after every drop, and are chosen to be edited at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl import model as m
from dsl.ids import assign_ids, walk_steps

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Kind:
    key: str  # as sent by the palette's buttons and drags
    title: str  # what the marketer reads
    icon: str  # one character, shown on the palette and the canvas nodes
    label_base: str  # new steps are labelled base_1, base_2, ...


KINDS: tuple[Kind, ...] = (
    Kind("trigger", "Trigger", "⚡", ""),
    Kind("wait", "Wait", "◷", "wait"),
    Kind("wait_for_event", "Wait for event", "◎", "wait_for"),
    Kind("condition", "Condition", "◇", "check"),
    Kind("split", "A/B split", "⋔", "split"),
    Kind("sms", "SMS", "✉", "sms"),
    Kind("push", "Push", "◉", "push"),
    Kind("coupon", "Coupon", "✂", "coupon"),
    Kind("webhook", "Webhook", "↗", "webhook"),
    Kind("update", "Update profile", "✎", "update"),
    Kind("tag", "Tag", "#", "tag"),
    Kind("exit", "Exit", "■", "exit"),
)
BY_KEY = {kind.key: kind for kind in KINDS}
PASS = Kind("pass", "Do nothing", "∅", "pass")  # drawn, never offered: the palette's steps all do something
BROKEN = Kind("broken", "Does not read", "!", "")  # a line that did not parse, drawn where it stands
STEP_KINDS = tuple(kind for kind in KINDS if kind.key != "trigger")  # a trigger is a setting


def kind_of(step: m.Step) -> Kind:
    """The palette kind a step is drawn as (`pass` is drawn as an empty slot, not a kind)."""
    match step:
        case m.Wait() | m.WaitUntil():
            return BY_KEY["wait"]
        case m.WaitForEvent():
            return BY_KEY["wait_for_event"]
        case m.If():
            return BY_KEY["condition"]
        case m.Split():
            return BY_KEY["split"]
        case m.Send(channel="sms"):
            return BY_KEY["sms"]
        case m.Send():
            return BY_KEY["push"]
        case m.IssueCoupon():
            return BY_KEY["coupon"]
        case m.CallWebhook():
            return BY_KEY["webhook"]
        case m.UpdateProfile():
            return BY_KEY["update"]
        case m.Tag():
            return BY_KEY["tag"]
        case m.Pass():
            return PASS
    return BY_KEY["exit"]


def fresh_label(journey: m.Journey, base: str) -> str:
    """`base_N` with the smallest N that is neither a label nor a step id of `journey`."""
    taken = set(assign_ids(journey).values()) | {s.label for s in walk_steps(journey.steps) if s.label}
    n = 1
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def new_step(key: str, journey: m.Journey, event: str = "purchase", pool: str = "COUPON_POOL") -> m.Step:
    """A new step of kind `key`, labelled so that it is unique in `journey`. `event` and `pool`
    are the first choices offered (the most recent event seen, the first coupon pool)."""
    kind = BY_KEY.get(key)
    if kind is None or kind.key == "trigger":
        raise KeyError(f"not a step kind: {key!r}")
    label = fresh_label(journey, kind.label_base)
    pass_ = (m.Pass(),)
    match key:
        case "wait":
            return m.Wait(DAY_SECONDS, label=label)
        case "wait_for_event":
            return m.WaitForEvent(event, None, DAY_SECONDS, m.Branch(pass_), m.Branch(pass_), label=label)
        case "condition":
            condition = m.Compare("in", m.Lit("vip"), m.Path(("user", "tags")))
            return m.If((m.CondBranch(condition, pass_),), m.Branch(pass_), label=label)
        case "split":
            arms = (m.SplitArm(50.0, False, pass_), m.SplitArm(50.0, False, pass_))
            return m.Split(label.replace("_", " "), arms, label=label)
        case "sms" | "push":
            return m.Send(key, text="Hi {{ user.first_name | default('there') }}!", label=label)
        case "coupon":
            return m.IssueCoupon(pool, label=label)
        case "webhook":
            return m.CallWebhook("https://example.com/hook", label=label)
        case "update":
            return m.UpdateProfile(m.Path(("user", "stage")), "=", m.Lit("engaged"), label=label)
        case "tag":
            return m.Tag("add", "engaged", label=label)
    return m.ExitStep(label=label)
