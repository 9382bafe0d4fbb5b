"""What a marketer types into the simulation panel, read into what the simulation is fed: a
sample profile and a list of timed events.

Events are one a line, because a scenario is read and edited like a script:

    +0m   purchase category=care_solution amount=58
    +2d12h product_viewed category=lens sku="L 1D 30"
    2026-06-08T10:00 purchase {"category": "lens", "items": [1, 2]}

A time is an offset from the start (`+2d12h`, the DSL's duration units) or a date and time,
read in the sample's zone when it gives no offset. Properties are `key=value` pairs, a value
being JSON when it reads as JSON (`58`, `true`, `"two words"`) and text otherwise; or one JSON
object for the rest of the line, for nested values. Every problem names its line and column
and quotes the text, because the panel shows them all at once, away from the textarea.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsl.durations import format_duration, parse_duration
from engine.messages import Message
from engine.timing import zone
from journeyflow.simulate import SeedProfile

MAX_EVENTS = 200  # per simulation: a request must not keep a worker thread for long
MAX_HORIZON = timedelta(days=400)  # how far after the start an event may be
MAX_INPUT_CHARS = 100_000  # the events text and the traits, each
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OFFSET = re.compile(r"\+((?:[0-9]+[wdhms])+)")
_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')
_SPACE = re.compile(r"\s+")
SIMULATED_MESSAGE_PREFIX = "sim-"  # message ids of simulated events: sim-<line>


class InputProblems(ValueError):
    """The panel's input has problems; each names where it is and quotes the text."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class TimedEvent:
    at: datetime  # aware, UTC
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    line: int = field(default=0, compare=False)


# --------------------------------------------------------------------------- values


def read_value(text: str) -> Any:
    """JSON when it reads as JSON, else the text itself: `58` is a number, `lens` a word."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def write_value(value: Any) -> str:
    """The shortest text `read_value` gives `value` back from."""
    if isinstance(value, str) and _bare(value):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _bare(text: str) -> bool:
    if not text or _SPACE.search(text) or '"' in text or "\\" in text or text[0] in "{[":
        return False
    try:
        json.loads(text)
    except ValueError:
        return True
    return False  # it would read back as a number, a boolean or null


def zone_of(name: str | None) -> tzinfo:
    """The zone a simulation shows times in: the engine's reading of a name (unknown is UTC)."""
    return zone(name)


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def read_time(text: str, zone: tzinfo) -> datetime:
    """An ISO date and time (`2026-06-01T22:00`, `2026-06-01 22:00`), in `zone` unless it says
    its own offset; raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def write_time(moment: datetime, zone: tzinfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M" if local.second == 0 else "%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------- events


def parse_events(text: str, start: datetime, zone: tzinfo) -> list[TimedEvent]:
    """The events of the text, in time order (text order among equal times); raises
    `InputProblems` with every bad line."""
    if len(text) > MAX_INPUT_CHARS:
        raise InputProblems([f"the events are longer than {MAX_INPUT_CHARS:,} characters"])
    problems: list[str] = []
    found: list[TimedEvent] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            event = _parse_line(line, number, start, zone)
        except _LineProblem as problem:
            problems.append(f"line {number}, column {problem.column}: {problem.message}: {line.strip()}")
            continue
        if not start <= event.at <= start + MAX_HORIZON:
            problems.append(f"line {number}, column 1: the time must be from the start to "
                            f"{MAX_HORIZON.days} days after it: {line.strip()}")
            continue
        found.append(event)
    if len(found) > MAX_EVENTS:
        problems.append(f"{len(found)} events: at most {MAX_EVENTS} in one simulation")
    if problems:
        raise InputProblems(problems)
    return sorted(found, key=lambda e: (e.at, e.line))


class _LineProblem(Exception):
    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _token(line: str, position: int) -> tuple[str, int, int]:
    """The next word from `position`: (word, its column from 1, where it ends)."""
    match = re.compile(r"\s*(\S*)").match(line, position)
    assert match is not None
    return match.group(1), match.start(1) + 1, match.end(1)


def _parse_line(line: str, number: int, start: datetime, zone: tzinfo) -> TimedEvent:
    when, column, position = _token(line, 0)
    at = _parse_when(when, column, start, zone)
    name, column, position = _token(line, position)
    if not name:
        raise _LineProblem(len(line) + 1, "an event name is missing after the time")
    if not NAME.fullmatch(name):
        raise _LineProblem(column, f"{name!r} is not an event name (letters, digits, _ . : -)")
    return TimedEvent(at, name, _parse_properties(line, position), number)


def _parse_when(text: str, column: int, start: datetime, zone: tzinfo) -> datetime:
    if text.startswith("+"):
        if not _OFFSET.fullmatch(text):
            raise _LineProblem(column, f"{text!r} is not an offset such as +0m, +2d or +1d12h")
        return start + timedelta(seconds=parse_duration(text[1:]))
    try:
        return read_time(text, zone)
    except ValueError:
        raise _LineProblem(column, f"{text!r} is not a time: write +2d12h or 2026-06-01T22:00") from None


def _parse_properties(line: str, position: int) -> dict[str, Any]:
    rest = line[position:]
    stripped = rest.lstrip()
    column = position + len(rest) - len(stripped) + 1
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise _LineProblem(column + error.pos, f"the properties are not JSON: {error.msg}") from None
        if not isinstance(value, dict):
            raise _LineProblem(column, "the properties must be one JSON object")
        return value
    properties: dict[str, Any] = {}
    while True:
        gap = _SPACE.match(line, position)
        position = gap.end() if gap else position
        if position >= len(line):
            return properties
        pair = _PAIR.match(line, position)
        if pair is None or (pair.end() < len(line) and not line[pair.end()].isspace()):
            word = _token(line, position)[0]
            raise _LineProblem(position + 1, f"{word!r} is not key=value (quote a value with spaces)")
        key, value = pair.group(1), pair.group(2)
        if key in properties:
            raise _LineProblem(position + 1, f"{key!r} is given twice")
        properties[key] = read_value(value)
        position = pair.end()


def format_events(events: list[TimedEvent], start: datetime) -> str:
    """Events as lines with offsets from `start`; `parse_events` reads them back."""
    return "".join(f"{format_event(e, start)}\n" for e in events)


def format_event(event: TimedEvent, start: datetime) -> str:
    offset = int((event.at - start).total_seconds())
    parts = [f"+{format_duration(offset)}" if offset > 0 else "+0m", event.name]
    values = list(event.properties.values())
    if any(isinstance(v, dict | list) for v in values):
        parts.append(json.dumps(dict(event.properties), ensure_ascii=False))
    else:
        parts += [f"{key}={write_value(value)}" for key, value in event.properties.items()]
    return " ".join(parts)


def messages_of(events: list[TimedEvent], user_id: str) -> list[Message]:
    """Track messages for the simulation, with ids from their lines (stable from run to run)."""
    return [Message("track", f"{SIMULATED_MESSAGE_PREFIX}{i}", e.at, user_id=user_id, event=e.name,
                    properties=dict(e.properties)) for i, e in enumerate(events, start=1)]


# --------------------------------------------------------------------------- the profile


def parse_traits(text: str) -> dict[str, Any]:
    """A JSON object, or `key = value` lines (values as in events: JSON, else text)."""
    if len(text) > MAX_INPUT_CHARS:
        raise InputProblems([f"the traits are longer than {MAX_INPUT_CHARS:,} characters"])
    if text.strip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputProblems([f"traits, line {error.lineno}, column {error.colno}: not JSON: {error.msg}"]) from None
        if not isinstance(value, dict):
            raise InputProblems(["traits: must be one JSON object"])
        return value
    traits: dict[str, Any] = {}
    problems = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals or not KEY.fullmatch(key.strip()):
            problems.append(f"traits, line {number}: write key = value: {line}")
            continue
        traits[key.strip()] = read_value(value.strip())
    if problems:
        raise InputProblems(problems)
    return traits


def format_traits(traits: Mapping[str, Any]) -> str:
    return "".join(f"{key} = {write_value(value)}\n" for key, value in traits.items())


def parse_identities(text: str) -> tuple[tuple[str, str], ...]:
    """`kind=value` words: the profile's other identities (phone, email, anonymous_id...)."""
    found = []
    for word in text.split():
        kind, equals, value = word.partition("=")
        if not equals or not KEY.fullmatch(kind) or not value:
            raise InputProblems([f"identities: write kind=value, e.g. phone=13800000000: {word}"])
        found.append((kind, value))
    return tuple(found)


def parse_profile(form: Mapping[str, str]) -> SeedProfile:
    problems: list[str] = []
    user_id = form.get("user_id", "").strip()
    if not user_id:
        problems.append("user id: is required (the events are this user's)")
    zone = form.get("timezone", "").strip()
    if zone and not valid_zone(zone):
        problems.append(f"time zone: {zone!r} is not a zone name such as Asia/Shanghai")
    traits: dict[str, Any] = {}
    found: tuple[tuple[str, str], ...] = ()
    for read in ("traits", "identities"):
        try:
            if read == "traits":
                traits = parse_traits(form.get("traits", ""))
            else:
                found = parse_identities(form.get("identities", ""))
        except InputProblems as error:
            problems += error.problems
    if problems:
        raise InputProblems(problems)
    tags = tuple(dict.fromkeys(t.strip() for t in form.get("tags", "").split(",") if t.strip()))
    return SeedProfile(user_id, traits, tags, zone or None, found)


def profile_fields(profile: SeedProfile) -> dict[str, str]:
    """The form's fields for a profile; `parse_profile` reads them back."""
    return {"user_id": profile.user_id, "traits": format_traits(profile.traits), "tags": ", ".join(profile.tags),
            "timezone": profile.timezone or "", "identities": " ".join(f"{k}={v}" for k, v in profile.identities)}


@dataclass(frozen=True)
class SimulationInput:
    """One simulation's input as the form holds it (and a saved scenario keeps it)."""

    fields: Mapping[str, str]  # user_id, traits, tags, timezone, identities, start, events

    FIELDS = ("user_id", "traits", "tags", "timezone", "identities", "start", "events")

    @classmethod
    def of(cls, form: Mapping[str, Any]) -> SimulationInput:
        return cls({name: str(form.get(name) or "").replace("\r\n", "\n") for name in cls.FIELDS})

    def read(self, journey_zone: str | None) -> tuple[SeedProfile, list[TimedEvent], tzinfo]:
        """The profile, the events and the zone times are read and shown in; raises
        `InputProblems` with every problem of the form."""
        problems: list[str] = []
        profile: SeedProfile | None = None
        try:
            profile = parse_profile(self.fields)
        except InputProblems as error:
            problems += error.problems
        zone = zone_of((profile.timezone if profile else None) or journey_zone)
        start_text = self.fields.get("start", "").strip()
        start = None
        try:
            start = read_time(start_text, zone) if start_text else None
        except ValueError:
            problems.append(f"start: {start_text!r} is not a date and time such as 2026-06-01 22:00")
        if start_text == "":
            problems.append("start: is required (offsets such as +2d count from it)")
        events: list[TimedEvent] = []
        if start is not None:
            try:
                events = parse_events(self.fields.get("events", ""), start, zone)
            except InputProblems as error:
                problems += [f"events, {p}" for p in error.problems]
        if problems or profile is None:
            raise InputProblems(problems)
        return profile, events, zone
