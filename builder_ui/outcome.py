"""A simulation's lines (`journeyflow.simulate`, with trace) read as a story for people: the
path as numbered visits of steps with what happened at each, the messages as they would be
sent, and a readable form of both that saved scenarios are compared by.

The readable form leaves out the visit numbers: a step added early would renumber every later
visit, and the difference should show what changed, not the shift.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from dsl.durations import format_duration

from .sample import write_time

_PER_SECONDS = re.compile(r"per ([0-9]+)s\b")


@dataclass
class Row:
    """One line of the path: a step visited (numbered), or the run entering or ending."""

    at: datetime
    step: str | None
    what: str
    number: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sent:
    at: datetime
    step: str
    channel: str
    content: str | None
    title: str | None = None
    coupon_code: str | None = None
    status: str | None = None  # None: would be sent; "suppressed" (a cap), "cancelled" (an exit)
    reason: str | None = None
    error: str | None = None


@dataclass
class Outcome:
    rows: list[Row]
    sent: list[Sent]
    zone: tzinfo

    def time(self, moment: datetime) -> str:
        return write_time(moment, self.zone)

    @property
    def visits(self) -> dict[str, list[int]]:
        """Step id to its visit numbers: what the canvas highlights."""
        found: dict[str, list[int]] = {}
        for row in self.rows:
            if row.step is not None and row.number is not None:
                found.setdefault(row.step, []).append(row.number)
        return found

    def readable(self) -> list[str]:
        lines = ["path:"]
        for row in self.rows:
            step = f" @{row.step}" if row.step else ""
            notes = "".join(f"; {n}" for n in row.notes)
            lines.append(f"  {self.time(row.at)}{step} {row.what}{notes}")
        lines.append("messages:")
        for s in self.sent:
            lines.append(f"  {self.time(s.at)} @{s.step} {s.channel}: {describe(s)}")
        if not self.sent:
            lines.append("  (none)")
        return lines


def describe(sent: Sent) -> str:
    if sent.channel == "coupon":
        return f"{sent.content} code {sent.coupon_code}"
    text = sent.content if sent.content is not None else f"(not rendered: {sent.error})"
    if text.startswith("template:"):
        text = f"template {text.removeprefix('template:')} (rendered from the catalog when sent)"
    title = f"[{sent.title}] " if sent.title else ""
    status = f" ({sent.status.upper()}: {humane(sent.reason or '')})" if sent.status else ""
    return f"{title}{text}{status}"


def humane(reason: str) -> str:
    """`per 604800s` as `per 7d`: how the journey's text says it."""
    return _PER_SECONDS.sub(lambda m: f"per {format_duration(int(m.group(1)))}", reason)


def _at(line: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(line["at"]))


def read_outcome(lines: Iterable[Mapping[str, Any]], zone: tzinfo, quiet_hours: str | None = None,
                 titles: Mapping[str, str] | None = None) -> Outcome:
    """The story of one user's lines, in the order the simulation gives them (time order);
    `titles` says what each step is (`wait 2d`), `quiet_hours` the window (`21:00-09:00`)."""
    outcome = Outcome([], [], zone)
    last: dict[str, Row] = {}  # step id -> its latest visit
    number = 0

    def note(step: str | None, text: str) -> None:
        row = last.get(step or "")
        if row is not None:
            row.notes.append(text)

    for line in lines:
        at, step, detail = _at(line), line.get("step"), str(line.get("detail") or "")
        kind = line.get("trace")
        if kind is None:
            sent = _sent(line, at)
            outcome.sent.append(sent)
            if sent.channel == "coupon":
                note(sent.step, f"coupon issued: {sent.coupon_code}")
            elif sent.status is None:
                note(sent.step, f"{sent.channel} sent at {outcome.time(at)}")
            continue
        if kind == "moved" and step and not detail:
            number += 1
            last[step] = Row(at, step, (titles or {}).get(step, "visited"), number)
            outcome.rows.append(last[step])
        elif kind == "moved" and detail == "received":
            note(step, f"the awaited event arrived at {outcome.time(at)}: took “received”")
        elif kind == "moved" and detail == "timeout":
            note(step, f"nothing came by {outcome.time(at)}: took “timeout”")
        elif kind == "moved":
            note(step, f"{detail} at {outcome.time(at)}")
        elif kind == "waiting":
            note(step, f"waits until {outcome.time(datetime.fromisoformat(detail.removeprefix('until ')))}")
        elif kind == "split":
            note(step, f"took arm {detail}")
        elif kind == "deferred":
            when = datetime.fromisoformat(detail.rsplit(" ", 1)[-1])
            window = f" {quiet_hours}" if quiet_hours else ""
            note(step, f"deferred by quiet hours{window} to {outcome.time(when)}")
        elif kind == "suppressed":
            note(step, f"suppressed, not sent: {humane(detail)}")
        elif kind == "cancelled":
            note(step, f"cancelled before it went out: the run ended ({detail})")
        elif kind == "coupon_empty":
            note(step, f"no coupon: {detail}")
        else:
            outcome.rows.append(_journey_row(str(kind), at, step, detail))
    return outcome


def _journey_row(kind: str, at: datetime, step: str | None, detail: str) -> Row:
    match kind:
        case "entered":
            return Row(at, None, "entered the journey")
        case "converted":
            return Row(at, None, f"converted: goal “{detail}” reached" + (f" (while at @{step})" if step else ""))
        case "exited":
            where = f" at @{step}" if step else ""
            return Row(at, None, f"exited{where}: {detail}")
        case "completed":
            return Row(at, None, "completed: reached the end")
    return Row(at, step, f"{kind}: {detail}")


def _sent(line: Mapping[str, Any], at: datetime) -> Sent:
    def text(key: str) -> str | None:
        value = line.get(key)
        return None if value is None else str(value)

    return Sent(at, str(line.get("step")), str(line.get("channel")), text("content"), text("title"),
                text("coupon_code"), text("status"), text("reason"), text("error"))


@dataclass(frozen=True)
class Difference:
    same: bool
    lines: list[tuple[str, str]]  # (" ", "+" or "-", the line), for showing


def difference(accepted: list[str], now: list[str]) -> Difference:
    """What changed from the accepted outcome's readable form to this run's, as a line diff."""
    if accepted == now:
        return Difference(True, [])
    shown = []
    for line in difflib.unified_diff(accepted, now, "accepted", "now", lineterm="", n=1):
        if line.startswith(("---", "+++")):
            continue
        shown.append((line[:1] if line[:1] in "+-@" else " ", line[1:] if line[:1] in "+- " else line))
    return Difference(False, shown)
