"""Event intake as producers use it: Segment-spec calls over real HTTP, on both backends."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from storage.tables import events, identities

from .conftest import Server

PROBLEM = "application/problem+json"


def stored(server: Server) -> dict[str, tuple[str, str | None]]:
    with server.db.connect() as conn:
        return {r.message_id: (r.type, r.name) for r in conn.execute(select(events))}


def test_a_track_call_is_stored_before_the_answer(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/track", json={
            "userId": "u1", "event": "purchase", "properties": {"category": "lens"}, "messageId": "m-1",
            "timestamp": "2026-01-05T10:00:00+08:00"})
    assert response.status_code == 200  # Segment's answer: RudderStack's SDK takes anything else as a failure
    assert response.json() == {"success": True, "accepted": 1}
    assert stored(server) == {"m-1": ("track", "purchase")}


def test_identify_alias_and_batch(server: Server) -> None:
    with server.client(server.write) as client:
        assert client.post("/v1/identify", json={"anonymousId": "a1", "traits": {"email": "x@example.com"},
                                                 "messageId": "i-1"}).status_code == 200
        alias = {"userId": "u1", "previousId": "a1", "messageId": "al-1"}
        assert client.post("/v1/alias", json=alias).status_code == 200
        response = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "signup", "messageId": "b-1"},
            {"type": "identify", "userId": "u1", "traits": {"first_name": "Li"}, "messageId": "b-2"}]})
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 2}
    assert stored(server) == {"i-1": ("identify", None), "al-1": ("alias", None), "b-1": ("track", "signup"),
                              "b-2": ("identify", None)}
    with server.db.connect() as conn:  # One-ID: the anonymous visitor and u1 are one profile
        owners = set(conn.execute(select(identities.c.profile_id)).scalars())
    assert len(owners) == 1


def test_a_resent_message_id_is_stored_once(server: Server) -> None:
    with server.client(server.write) as client:
        for _ in range(3):
            assert client.post("/v1/track", json={"userId": "u1", "event": "e", "messageId": "same"}).status_code == 200
    with server.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1


def test_bad_fields_are_named_in_problem_json(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/track", json={"event": ["x"], "properties": [], "timestamp": "yesterday"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 400 and body["instance"] == "/v1/track"
    assert {e["field"] for e in body["errors"]} == {"userId", "event", "properties", "timestamp"}


def test_group_page_and_screen_calls(server: Server) -> None:
    with server.client(server.write) as client:
        answers = [
            client.post("/v1/page", json={"userId": "u1", "name": "Home", "messageId": "p-1"}),
            client.post("/v1/screen", json={"anonymousId": "a1", "name": "Cart", "category": "Shop",
                                            "messageId": "s-1"}),
            client.post("/v1/group", json={"userId": "u1", "groupId": "store-0571", "traits": {"city": "杭州"},
                                           "messageId": "g-1"}),
            client.post("/v1/batch", json={"batch": [
                {"type": "page", "userId": "u1", "messageId": "p-2"},
                {"type": "screen", "userId": "u1", "messageId": "s-2"},
                {"type": "group", "userId": "u1", "groupId": "g2", "messageId": "g-2"}]}),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert stored(server) == {"p-1": ("page", "Viewed Home Page"), "s-1": ("screen", "Viewed Shop Cart Screen"),
                              "g-1": ("group", None), "p-2": ("page", "Loaded a Page"),
                              "s-2": ("screen", "Loaded a Screen"), "g-2": ("group", None)}
    with server.db.connect() as conn:
        group = conn.execute(select(events.c.properties).where(events.c.message_id == "g-1")).scalar_one()
    assert group == {"group_id": "store-0571", "traits": {"city": "杭州"}}


def test_a_batch_keeps_its_good_messages_and_names_the_bad_ones_by_index(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "ok", "messageId": "ok-1"},
            {"type": "track", "event": "no-user"},
            {"type": "shout", "userId": "u2"},
            {"type": "page", "userId": "u1", "name": "Home", "messageId": "ok-2"}]})
    assert response.status_code == 200
    body = response.json()
    assert (body["success"], body["accepted"]) == (True, 2)
    assert body["rejected"] == [
        {"index": 1, "errors": [{"field": "batch[1].userId", "detail": "userId or anonymousId is required"}]},
        {"index": 2, "errors": [{"field": "batch[2].type",
                                 "detail": "must be one of track, identify, alias, group, page, screen"}]}]
    assert stored(server) == {"ok-1": ("track", "ok"), "ok-2": ("page", "Viewed Home Page")}


def test_a_batch_with_no_good_message_is_refused(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/batch", json={"batch": [{"type": "track", "event": "no-user"}, 7]})
    assert response.status_code == 400
    body = response.json()
    assert {e["field"] for e in body["errors"]} == {"batch[0].userId", "batch[1]"}
    assert (body["code"], body["message"]) == ("invalid-request", body["detail"])  # what the SDKs read
    assert stored(server) == {}


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _zlib(data: bytes) -> bytes:
    return zlib.compress(data)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(("encoding", "pack"), [("gzip", _gzip), ("deflate", _zlib), ("deflate", _raw_deflate)])
def test_compressed_bodies_are_decoded(server: Server, encoding: str, pack: Any) -> None:
    body = json.dumps({"batch": [{"type": "track", "userId": "u1", "event": "e", "messageId": f"z-{i}"}
                                 for i in range(3)]}).encode()
    with server.client(server.write) as client:
        response = client.post("/v1/batch", content=pack(body),
                               headers={"Content-Type": "application/json", "Content-Encoding": encoding})
        single = client.post("/v1/track", content=pack(b'{"userId": "u1", "event": "one", "messageId": "z-one"}'),
                             headers={"Content-Encoding": encoding.upper()})
    assert (response.status_code, response.json()["accepted"], single.status_code) == (200, 3, 200)
    assert set(stored(server)) == {"z-0", "z-1", "z-2", "z-one"}


def test_a_zip_bomb_is_refused_on_its_decoded_size(server: Server) -> None:
    limit = server.settings.max_message_bytes
    inflated = b'{"userId": "u1", "event": "e", "properties": {"pad": "' + b"x" * (100 * limit) + b'"}}'
    bomb = _gzip(inflated)
    assert len(bomb) < limit  # small on the wire, 100 times the limit once decoded
    with server.client(server.write) as client:
        response = client.post("/v1/track", content=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert stored(server) == {}


def test_broken_or_unknown_encodings_are_named(server: Server) -> None:
    body = _gzip(b'{"userId": "u1", "event": "e"}')
    with server.client(server.write) as client:
        truncated = client.post("/v1/track", content=body[:-8], headers={"Content-Encoding": "gzip"})
        garbage = client.post("/v1/track", content=b"not gzip", headers={"Content-Encoding": "gzip"})
        brotli = client.post("/v1/track", content=b"...", headers={"Content-Encoding": "br"})
    assert (truncated.status_code, garbage.status_code, brotli.status_code) == (400, 400, 415)
    assert truncated.json()["errors"] == [{"field": "body", "detail": "is truncated"}]
    assert brotli.json()["errors"] == [{"field": "Content-Encoding", "detail": "must be gzip, deflate or identity"}]
    assert stored(server) == {}


# Bodies Python's json module parses but nothing after it can store, each with the field it names.
HOSTILE: list[tuple[bytes, str, str]] = [
    (b'{"userId": "\\ud83d", "event": "e"}', "userId", "lone surrogate"),
    (b'{"userId": "u", "event": "\\udc00x"}', "event", "lone surrogate"),
    (b'{"userId": "u", "event": "e", "messageId": "\\ud83d"}', "messageId", "lone surrogate"),
    (b'{"userId": "u", "event": "e", "properties": {"\\ud83d": 1}}', r'properties["\ud83d"]', "name"),
    (b'{"userId": "u", "event": "e", "properties": {"price": NaN}}', "properties.price", "finite"),
    (b'{"userId": "u", "event": "e", "properties": {"price": -Infinity}}', "properties.price", "finite"),
    (b'{"userId": "u", "event": "e", "properties": {"price": 1e999}}', "properties.price", "finite"),
    (b'{"userId": "u", "event": "e", "properties": {"n": ' + b"9" * 5000 + b"}}", "properties.n", "digits"),
    (b'{"userId": "u", "event": "e", "properties": {"deep": ' + b"[" * 100 + b"]" * 100 + b"}}",
     "properties.deep" + "[0]" * 62, "levels"),
]


@pytest.mark.parametrize(("body", "field", "says"), HOSTILE)
def test_unstorable_values_are_a_400_naming_the_field(server: Server, body: bytes, field: str, says: str) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/track", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field and says in error["detail"]
    assert stored(server) == {}


def test_unstorable_values_cost_only_their_own_message_in_a_batch(server: Server) -> None:
    good = b'{"type": "track", "userId": "u", "event": "kept", "messageId": "good-%d"}'
    items = [good % 0] + [b'{"type": "track", ' + body[1:] for body, _, _ in HOSTILE] + [good % 1]
    body = b'{"batch": [' + b", ".join(items) + b"]}"
    with server.client(server.write) as client:
        response = client.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 2
    assert [r["index"] for r in answer["rejected"]] == list(range(1, len(HOSTILE) + 1))
    assert [r["errors"][0]["field"] for r in answer["rejected"]] == [f"batch[{i + 1}].{f}"
                                                                     for i, (_, f, _) in enumerate(HOSTILE)]
    assert stored(server) == {"good-0": ("track", "kept"), "good-1": ("track", "kept")}


def test_nesting_past_the_interpreters_limit_is_a_400(server: Server) -> None:
    deep = b'{"userId": "u", "event": "e", "properties": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    with server.client(server.write) as client:
        single = client.post("/v1/track", content=deep)
        batch = client.post("/v1/batch", content=b'{"batch": [' + deep + b"]}")
    assert (single.status_code, batch.status_code) == (400, 400)
    assert single.json()["errors"] == [{"field": "body", "detail": "nested over 64 levels"}]


def test_a_batch_context_that_cannot_be_stored_refuses_the_batch(server: Server) -> None:
    """It would be copied into every message: none could be stored."""
    body = b'{"batch": [{"type": "track", "userId": "u", "event": "e"}], "context": {"ip": "\\ud800"}}'
    with server.client(server.write) as client:
        response = client.post("/v1/batch", content=body)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["context.ip"]
    assert stored(server) == {}


def test_numeric_ids_are_read_as_their_decimal_text(server: Server) -> None:
    with server.client(server.write) as client:
        whole = client.post("/v1/track", json={"userId": 1001, "event": "e", "messageId": 7})
        float_id = client.post("/v1/track", json={"userId": 1002.0, "event": "e", "messageId": "f"})
        fraction = client.post("/v1/track", json={"userId": 1.5, "event": "e"})
        inexact = client.post("/v1/track", json={"userId": 2**53 + 1, "event": "e"})
    assert (whole.status_code, float_id.status_code, fraction.status_code, inexact.status_code) == (200, 200, 400, 400)
    assert fraction.json()["errors"][0]["field"] == "userId"
    with server.db.connect() as conn:
        assert set(conn.execute(select(identities.c.value)).scalars()) == {"1001", "1002"}
    assert set(stored(server)) == {"7", "f"}


def test_identify_with_context_that_is_not_an_object(server: Server) -> None:
    with server.client(server.write) as client:
        answers = [client.post("/v1/identify", json={"userId": "u", "context": context}) for context in ("web", [1])]
        batch = client.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u", "event": "e"}],
                                               "context": "web"})
    assert [a.status_code for a in answers] == [400, 400]
    assert all(a.json()["errors"] == [{"field": "context", "detail": "must be an object"}] for a in answers)
    assert batch.status_code == 400 and batch.json()["errors"][0]["field"] == "context"


def test_not_json_and_not_an_object(server: Server) -> None:
    with server.client(server.write) as client:
        broken = client.post("/v1/track", content=b"{nope", headers={"Content-Type": "application/json"})
        listed = client.post("/v1/track", json=[1, 2])
        form = client.post("/v1/track", data={"event": "x"})
        nul = client.post("/v1/track", json={"userId": "a\x00b", "event": "x"})
        nul_in_batch = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "x"},
            {"type": "identify", "userId": "u2", "traits": {"email": "a\x00@example.com"}}]})
    assert [r.status_code for r in (broken, listed, form, nul, nul_in_batch)] == [400, 400, 415, 400, 200]
    assert broken.json()["errors"][0]["field"] == "body"
    assert nul.json()["errors"] == [{"field": "userId", "detail": "must not contain NUL characters"}]
    assert nul_in_batch.json()["rejected"] == [{"index": 1, "errors": [
        {"field": "batch[1].traits.email", "detail": "must not contain NUL characters"}]}]


def test_a_body_declared_too_large_is_refused_with_413(server: Server) -> None:
    big = json.dumps({"userId": "u1", "event": "e", "properties": {"pad": "x" * server.settings.max_message_bytes}})
    with server.client(server.write) as client:
        response = client.post("/v1/track", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert stored(server) == {}


def test_a_chunked_body_is_cut_off_at_the_limit(server: Server) -> None:
    """No Content-Length: the bytes are counted as they stream in."""
    limit = server.settings.max_message_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"userId": "u1", "event": "e", "properties": {"pad": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}}'

    with server.client(server.write) as client:
        response = client.post("/v1/track", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert stored(server) == {}


def test_a_batch_with_too_many_messages_is_refused_with_413(server: Server) -> None:
    count = server.settings.max_batch_messages + 1
    batch = [{"type": "track", "userId": "u", "event": "e"} for _ in range(count)]
    with server.client(server.write) as client:
        response = client.post("/v1/batch", json={"batch": batch})
    assert response.status_code == 413
    assert str(count) in response.json()["detail"]


def test_a_batch_at_the_limit_is_accepted(server: Server) -> None:
    count = server.settings.max_batch_messages
    batch = [{"type": "track", "userId": f"u{i % 50}", "event": "e", "messageId": f"m{i}"} for i in range(count)]
    with server.client(server.write) as client:
        response = client.post("/v1/batch", json={"batch": batch}, timeout=60)
    assert response.status_code == 200
    assert len(stored(server)) == count


def test_unknown_routes_and_methods_answer_problem_json(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        missing, wrong_method = client.get("/v1/nothing"), client.get("/v1/track")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.headers["content-type"] == wrong_method.headers["content-type"] == PROBLEM
