"""Segment-spec messages (`track`, `identify`, `alias`) as producers send them, checked once.

Field names are Segment's camelCase, so an existing pipeline (Segment, RudderStack, ...) can
point its webhook destination at Journeyflow unchanged. Every problem names its field, which
is what the API's problem+json body and `simulate`'s error lines report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

MessageType: TypeAlias = Literal["track", "identify", "alias"]
MESSAGE_TYPES: tuple[MessageType, ...] = ("track", "identify", "alias")

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
    event: str | None = None  # track
    properties: Mapping[str, Any] = field(default_factory=dict)  # track
    traits: Mapping[str, Any] = field(default_factory=dict)  # identify
    previous_id: str | None = None  # alias

    def identities(self) -> list[tuple[str, str]]:
        """(kind, value) pairs this message names its person by, strongest first."""
        found: list[tuple[str, str]] = []
        if self.user_id:
            found.append(("user_id", self.user_id))
        if self.anonymous_id:
            found.append(("anonymous_id", self.anonymous_id))
        for trait in IDENTITY_TRAITS:
            value = self.traits.get(trait)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                found.append((trait, str(value).strip()))
        return found


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError("must be an ISO-8601 timestamp")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _text(raw: Mapping[str, Any], key: str, problems: dict[str, str], required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            problems[key] = "is required"
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        problems[key] = "must be a string"
        return None
    return value


def _object(raw: Mapping[str, Any], key: str, problems: dict[str, str]) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems[key] = "must be an object"
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
    if kind == "alias" and not user_id:
        problems["userId"] = "is required"
    properties = _object(raw, "properties", problems)
    traits = _object(raw, "traits", problems)
    if kind == "identify" and not traits:
        traits = _object(raw.get("context") or {}, "traits", problems)
    message_id = _text(raw, "messageId", problems) or derived_message_id(raw)
    timestamp = received_at
    if raw.get("timestamp") is not None:
        try:
            timestamp = _parse_time(raw["timestamp"])
        except ValueError as error:
            problems["timestamp"] = str(error) if "ISO" in str(error) else "must be an ISO-8601 timestamp"
    if problems:
        raise MessageInvalid(problems)
    return Message(kind, message_id, timestamp, user_id, anonymous_id, event, properties, traits,  # type: ignore[arg-type]
                   previous_id)
