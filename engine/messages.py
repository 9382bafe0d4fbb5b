"""Segment-spec messages (`track`, `identify`, `alias`, `group`, `page`, `screen`) as producers
send them, checked once.

Field names are Segment's camelCase, so an existing pipeline (Segment, RudderStack, ...) can
point its webhook destination at Journeyflow unchanged. Every problem names its field, which
is what the API's problem+json body and `simulate`'s error lines report.

Page and screen calls are events like tracks, named the way Segment names them when it turns
them into tracks for a destination ("Viewed Home Page", or "Loaded a Page" for an unnamed
page), so a journey can trigger on, wait for and count them. A group call says which group
(company, household, store) a person belongs to and describes the group; `engine.groups`
says how that lands on the profile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeAlias

MessageType: TypeAlias = Literal["track", "identify", "alias", "group", "page", "screen"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("track", "identify", "alias", "group", "page", "screen")
# The types that are events in a journey's sense: what triggers, waits and history counts see.
EVENT_TYPES: frozenset[str] = frozenset({"track", "page", "screen"})

# Ids and names end up in indexed columns, and an index entry has a size limit (PostgreSQL's
# B-tree refuses entries over about 2.7 kB): 255 characters of up to 4 bytes each stay under it.
MAX_ID_LENGTH = 255
MAX_SAFE_INTEGER = 2**53  # a numeric id past this has already lost digits in JavaScript senders
# Timestamps a producer may give. Outside these, date arithmetic (windows, waits, zones) could
# overflow, and no real event happened then; a clear refusal beats a stuck engine.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

# Traits that identify a person as well as describe them: an identify carrying one of these
# attaches that identity to the profile (One-ID), so a CRM phone number or a messaging-app id
# finds the same person later.
IDENTITY_TRAITS = ("phone", "email", "wechat_openid", "crm_id")


class MessageInvalid(ValueError):
    """A message that cannot be accepted; `problems` maps each bad field to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


@dataclass(frozen=True)
class Message:
    type: MessageType
    message_id: str
    timestamp: datetime  # aware, UTC
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None  # track, page, screen (the name Segment gives them)
    properties: Mapping[str, Any] = field(default_factory=dict)  # track, page, screen
    traits: Mapping[str, Any] = field(default_factory=dict)  # identify: the person's; group: the group's
    previous_id: str | None = None  # alias
    group_id: str | None = None  # group

    def identities(self) -> list[tuple[str, str]]:
        """(kind, value) pairs this message names its person by, strongest first."""
        found: list[tuple[str, str]] = []
        if self.user_id:
            found.append(("user_id", self.user_id))
        if self.anonymous_id:
            found.append(("anonymous_id", self.anonymous_id))
        if self.type != "identify":  # a group's traits describe the group (its email is not the person's)
            return found
        for trait in IDENTITY_TRAITS:
            value = self.traits.get(trait)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                found.append((trait, str(value).strip()))
        return found


def parse_time(value: Any) -> datetime:
    """An ISO-8601 time as aware UTC, within the years a message may name; raises ValueError
    saying what is wrong. Public so that every time field a producer gives (`timestamp`, and a
    simulation's `receivedAt`) is read and refused the same way."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 timestamp") from None
    else:
        raise ValueError("must be an ISO-8601 timestamp")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        moment = EARLIEST - timedelta(days=1) if moment.year < 2000 else LATEST
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year - 1}")
    return moment


def _text(raw: Mapping[str, Any], key: str, problems: dict[str, str], required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            problems[key] = "is required"
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Pipelines send numeric ids (a CRM's member number): read as their decimal text, as
        # long as they are whole and exact in a double, which is all a JSON sender can promise.
        if not (abs(value) <= MAX_SAFE_INTEGER and (isinstance(value, int) or value.is_integer())):
            problems[key] = f"must be a string, or a whole number of at most {MAX_SAFE_INTEGER}"
            return None
        value = str(int(value))
    elif not isinstance(value, str):
        problems[key] = "must be a string"
        return None
    if len(value) > MAX_ID_LENGTH:
        problems[key] = f"must be at most {MAX_ID_LENGTH} characters"
        return None
    return value


def _object(raw: Mapping[str, Any], key: str, problems: dict[str, str], name: str | None = None) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems[name or key] = "must be an object"
        return {}
    return dict(value)


def derived_message_id(raw: Mapping[str, Any]) -> str:
    """A message id for a sender that gave none: a hash of the content, so an identical resend
    is still recognised as a duplicate."""
    canonical = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=False)
    return "jf-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse_message(raw: Any, received_at: datetime, forced_type: str | None = None) -> Message:
    """Check one message; raises `MessageInvalid` naming every bad field."""
    if not isinstance(raw, Mapping):
        raise MessageInvalid({"": "a message must be a JSON object"})
    problems: dict[str, str] = {}
    kind = forced_type or raw.get("type")
    if kind not in MESSAGE_TYPES:
        problems["type"] = f"must be one of {', '.join(MESSAGE_TYPES)}"
    user_id = _text(raw, "userId", problems)
    anonymous_id = _text(raw, "anonymousId", problems)
    if kind != "alias" and not user_id and not anonymous_id and "userId" not in problems:
        problems["userId"] = "userId or anonymousId is required"
    event = _text(raw, "event", problems, required=kind == "track")
    previous_id = _text(raw, "previousId", problems, required=kind == "alias")
    group_id = _text(raw, "groupId", problems, required=kind == "group")
    if kind == "alias" and not user_id and "userId" not in problems:
        problems["userId"] = "is required"
    properties = _object(raw, "properties", problems)
    traits = _object(raw, "traits", problems)
    context = _object(raw, "context", problems)
    if kind == "identify" and not traits:
        traits = _object(context, "traits", problems, "context.traits")
    if kind == "identify":  # these become identities, kept in an indexed column like the ids
        problems |= {f"traits.{t}": f"must be at most {MAX_ID_LENGTH} characters" for t in IDENTITY_TRAITS
                     if isinstance(traits.get(t), str | int) and len(str(traits[t]).strip()) > MAX_ID_LENGTH}
    if kind in ("page", "screen"):
        event, properties = _viewed(raw, kind, properties, problems)
    message_id = _text(raw, "messageId", problems) or derived_message_id(raw)
    timestamp = received_at
    if raw.get("timestamp") is not None:
        try:
            timestamp = parse_time(raw["timestamp"])
        except ValueError as error:
            problems["timestamp"] = str(error)
    if problems:
        raise MessageInvalid(problems)
    return Message(kind, message_id, timestamp, user_id, anonymous_id, event, properties, traits,  # type: ignore[arg-type]
                   previous_id, group_id)


def _viewed(raw: Mapping[str, Any], kind: str, properties: dict[str, Any],
            problems: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """A page or screen call's event name, as Segment names it for destinations that take only
    tracks, and its properties with the call's `name` and `category` among them."""
    name = _text(raw, "name", problems)
    category = _text(raw, "category", problems)
    noun = "Page" if kind == "page" else "Screen"
    full = " ".join(part for part in (category, name) if part)  # as analytics.js names a categorised page
    extra = {k: v for k, v in (("name", name), ("category", category)) if v is not None and k not in properties}
    return (f"Viewed {full} {noun}" if full else f"Loaded a {noun}"), {**properties, **extra}
