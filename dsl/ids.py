"""Stable step ids.

An explicit `@label` is the id. Without one, the id is derived from the step's kind and main
argument (`wait_2d`, `send_push_lens_intro`), numbered `_2`, `_3` in document order when it
repeats. Derived ids survive inserting, deleting and moving *other* steps, which is what keeps
running users and per-step analytics attached through an edit; editing the step's own main
argument changes its derived id, which is why the builder always writes labels.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from . import model as m
from .formatter import format_expr, format_wait

_MAX_SLUG = 32
_NON_WORD = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = _MAX_SLUG) -> str:
    """ASCII words of `text`, whole words only, up to `limit` characters. Text with no ASCII
    word (an all-Chinese message, say) gets a short hash of itself instead."""
    words = [w for w in _NON_WORD.split(text.lower()) if w]
    out = ""
    for word in words:
        candidate = f"{out}_{word}" if out else word
        if len(candidate) > limit:
            break
        out = candidate
    if not out and words:
        out = words[0][:limit]
    return out or "h" + hashlib.sha1(text.encode()).hexdigest()[:6]


def derived_base(step: m.Step) -> str:
    match step:
        case m.Wait():
            # `wait_2d` for 48 hours, `wait_2_days` for two calendar days: they are different
            # waits to the engine, so one must not take the other's id (or its waiting users).
            return "wait_" + format_wait(step).replace(" ", "_")
        case m.WaitUntil(time=time, weekday=weekday):
            return f"wait_until_{weekday + '_' if weekday else ''}{time.hour:02d}{time.minute:02d}"
        case m.WaitForEvent(event=event):
            return f"wait_for_{slug(event)}"
        case m.If(arms=arms):
            return f"if_{slug(format_expr(arms[0].condition))}"
        case m.Split(name=name):
            return f"split_{slug(name)}"
        case m.Send(channel=channel, text=text, template=template):
            return f"send_{channel}_{slug(template if template is not None else text or '', 24)}"
        case m.IssueCoupon(pool=pool):
            return f"coupon_{slug(pool)}"
        case m.CallWebhook(url=url):
            parts = urlsplit(url)
            return f"webhook_{slug(parts.netloc + parts.path)}"
        case m.UpdateProfile(path=path):
            return "update_" + "_".join(path.parts[1:])
        case m.Tag(action=action, tag=tag):
            return f"{action}_tag_{slug(tag)}"
        case m.ExitStep():
            return "exit"
        case m.Pass():
            return "pass"
    raise TypeError(f"not a step: {step!r}")


def walk_steps(steps: tuple[m.Step, ...]) -> Iterator[m.Step]:
    """Every step, nested ones included, in document order."""
    for step in steps:
        yield step
        for block in m.child_blocks(step):
            yield from walk_steps(block)


def assign_ids(journey: m.Journey) -> dict[int, str]:
    """Map `id(step)` and `id(split_arm)` to stable ids, for one model object."""
    steps = list(walk_steps(journey.steps))
    taken = {s.label for s in steps if s.label}
    ids: dict[int, str] = {}
    for step in steps:
        if step.label:
            ids[id(step)] = step.label
            continue
        base = derived_base(step)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        ids[id(step)] = candidate
    for step in steps:
        if isinstance(step, m.Split):
            for index, arm in enumerate(step.arms):
                name = arm.label or ("control" if arm.control else chr(ord("a") + index % 26))
                ids[id(arm)] = f"{ids[id(step)]}.{name}"
    return ids
