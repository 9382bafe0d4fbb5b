"""Segment-spec messages: accepted as pipelines send them, refused with every bad field named."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.messages import MessageInvalid, derived_message_id, parse_message, parse_time

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
        ({"type": "pageview", "userId": "u"}, {"type": "must be one of track, identify, alias, group, page, screen"}),
        ({"type": "group", "userId": "u"}, {"groupId": "is required"}),
        ({"type": "identify", "userId": "u", "context": "web"}, {"context": "must be an object"}),
        ({"type": "identify", "userId": "u", "context": ["web"]}, {"context": "must be an object"}),
        ({"type": "identify", "userId": "u", "context": {"traits": "x"}}, {"context.traits": "must be an object"}),
        ({"type": "track", "event": "x" * 256, "userId": "u"}, {"event": "must be at most 255 characters"}),
        ({"type": "track", "event": "x", "userId": 10**300},
         {"userId": "must be a string, or a whole number of at most 9007199254740992"}),
        ({"type": "page", "userId": "u", "name": 3.5},
         {"name": "must be a string, or a whole number of at most 9007199254740992"}),
        ({"type": "page", "userId": "u", "name": True}, {"name": "must be a string"}),
        ({"type": "identify", "userId": "u", "traits": {"email": "e" * 256}},
         {"traits.email": "must be at most 255 characters"}),
        ({"type": "track", "event": "x", "userId": "u", "properties": [1]}, {"properties": "must be an object"}),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "yesterday"},
         {"timestamp": "must be an ISO-8601 timestamp"}),
        # Both overflow when moved to UTC; neither is a time anything happened.
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "0001-01-01T00:00:00+01:00"},
         {"timestamp": "must be between 1900 and 2999"}),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "9999-12-31T23:59:59-01:00"},
         {"timestamp": "must be between 1900 and 2999"}),
        ({"type": "track", "event": "x", "userId": "u", "timestamp": "1899-12-31T23:59:59Z"},
         {"timestamp": "must be between 1900 and 2999"}),
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


@pytest.mark.parametrize(
    ("raw", "name", "properties"),
    [
        ({"name": "Home", "properties": {"path": "/"}}, "Viewed Home Page", {"path": "/", "name": "Home"}),
        ({"name": "Lenses", "category": "Shop"}, "Viewed Shop Lenses Page", {"name": "Lenses", "category": "Shop"}),
        ({"category": "Shop"}, "Viewed Shop Page", {"category": "Shop"}),
        ({}, "Loaded a Page", {}),
        ({"name": "Home", "properties": {"name": "kept"}}, "Viewed Home Page", {"name": "kept"}),
    ],
)
def test_pages_are_events_named_as_segment_names_them(raw: dict[str, Any], name: str,
                                                        properties: dict[str, Any]) -> None:
    message = parse_message({"type": "page", "userId": "u", **raw}, NOW)
    assert (message.type, message.event, dict(message.properties)) == ("page", name, properties)


def test_screens_are_named_like_pages() -> None:
    assert parse_message({"type": "screen", "anonymousId": "a", "name": "Cart"}, NOW).event == "Viewed Cart Screen"
    assert parse_message({"type": "screen", "anonymousId": "a"}, NOW).event == "Loaded a Screen"


def test_a_groups_traits_describe_the_group_not_the_person() -> None:
    message = parse_message({"type": "group", "userId": "u", "groupId": 42,
                             "traits": {"email": "shop@example.com", "plan": "pro"}}, NOW)
    assert (message.group_id, dict(message.traits)) == ("42", {"email": "shop@example.com", "plan": "pro"})
    assert message.identities() == [("user_id", "u")]  # the group's email is not the person's identity


def test_parse_time_reads_and_refuses_every_producer_time_the_same_way() -> None:
    """Public for the other time fields a producer gives (a simulation's `receivedAt`)."""
    assert parse_time("2026-11-20T08:00:00+08:00") == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    assert parse_time("2026-11-20T00:00:00Z") == parse_time("2026-11-20T00:00:00")  # no zone: UTC
    for bad, why in (("soon", "must be an ISO-8601 timestamp"), (1700000000, "must be an ISO-8601 timestamp"),
                     ("1800-01-01T00:00:00Z", "must be between 1900 and 2999")):
        with pytest.raises(ValueError, match=why):
            parse_time(bad)
