"""Segment-spec messages: accepted as pipelines send them, refused with every bad field named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.messages import MessageInvalid, derived_message_id, parse_message

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_track_with_camel_case_fields() -> None:
    message = parse_message({"type": "track", "event": "purchase", "userId": "u1", "anonymousId": "a1",
                             "properties": {"category": "lens"}, "messageId": "m1",
                             "timestamp": "2026-11-20T08:00:00+08:00"}, NOW)
    assert (message.type, message.event, message.message_id) == ("track", "purchase", "m1")
    assert message.timestamp == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert message.identities() == [("user_id", "u1"), ("anonymous_id", "a1")]


def test_identify_traits_that_identify_a_person_become_identities() -> None:
    message = parse_message({"type": "identify", "anonymousId": "a1",
                             "traits": {"phone": "13800000000", "email": " x@example.com ", "name": "Li"}}, NOW)
    assert message.identities() == [("anonymous_id", "a1"), ("phone", "13800000000"), ("email", "x@example.com")]
    assert message.timestamp == NOW  # no timestamp: the time it was received


def test_segment_puts_identify_traits_in_context_sometimes() -> None:
    message = parse_message({"type": "identify", "userId": "u", "context": {"traits": {"email": "e@x"}}}, NOW)
    assert message.traits == {"email": "e@x"}


def test_alias_needs_both_ids() -> None:
    assert parse_message({"type": "alias", "userId": "u", "previousId": "a"}, NOW).previous_id == "a"
    with pytest.raises(MessageInvalid) as caught:
        parse_message({"type": "alias", "userId": "u"}, NOW)
    assert caught.value.problems == {"previousId": "is required"}


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ({"type": "track", "userId": "u"}, {"event": "is required"}),
        ({"type": "track", "event": "x"}, {"userId": "userId or anonymousId is required"}),
        ({"type": "page", "userId": "u"}, {"type": "must be one of track, identify, alias"}),
        ({"type": "track", "event": "x", "userId": "u", "properties": [1]}, {"properties": "must be an object"}),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "yesterday"},
         {"timestamp": "must be an ISO-8601 timestamp"}),
        ({"type": "track", "event": {"n": 5}, "userId": ["u"]},
         {"event": "must be a string", "userId": "must be a string"}),
        ([], {"": "a message must be a JSON object"}),
    ],
)
def test_every_bad_field_is_named(raw: Any, problems: dict[str, str]) -> None:
    with pytest.raises(MessageInvalid) as caught:
        parse_message(raw, NOW)
    assert caught.value.problems == problems


def test_a_missing_message_id_is_derived_from_the_content_so_resends_still_dedupe() -> None:
    raw = {"type": "track", "event": "x", "userId": "u", "properties": {"a": 1}}
    assert parse_message(raw, NOW).message_id == parse_message(dict(raw), NOW).message_id == derived_message_id(raw)
    assert parse_message({**raw, "properties": {"a": 2}}, NOW).message_id != derived_message_id(raw)


def test_forced_type_for_typed_endpoints() -> None:
    assert parse_message({"event": "x", "userId": "u"}, NOW, forced_type="track").type == "track"
