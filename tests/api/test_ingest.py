"""Event intake as producers use it: Segment-spec calls over real HTTP, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from sqlalchemy import func, select

from storage.tables import events, identities

from .conftest import Server

PROBLEM = "application/problem+json"


def stored(server: Server) -> dict[str, tuple[str, str | None]]:
    with server.db.connect() as conn:
        return {r.message_id: (r.type, r.name) for r in conn.execute(select(events))}


def test_a_track_call_is_stored_before_the_202(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/track", json={
            "userId": "u1", "event": "purchase", "properties": {"category": "lens"}, "messageId": "m-1",
            "timestamp": "2026-01-05T10:00:00+08:00"})
    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    assert stored(server) == {"m-1": ("track", "purchase")}


def test_identify_alias_and_batch(server: Server) -> None:
    with server.client(server.write) as client:
        assert client.post("/v1/identify", json={"anonymousId": "a1", "traits": {"email": "x@example.com"},
                                                 "messageId": "i-1"}).status_code == 202
        alias = {"userId": "u1", "previousId": "a1", "messageId": "al-1"}
        assert client.post("/v1/alias", json=alias).status_code == 202
        response = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "signup", "messageId": "b-1"},
            {"type": "identify", "userId": "u1", "traits": {"first_name": "Li"}, "messageId": "b-2"}]})
    assert response.status_code == 202
    assert response.json() == {"accepted": 2}
    assert stored(server) == {"i-1": ("identify", None), "al-1": ("alias", None), "b-1": ("track", "signup"),
                              "b-2": ("identify", None)}
    with server.db.connect() as conn:  # One-ID: the anonymous visitor and u1 are one profile
        owners = set(conn.execute(select(identities.c.profile_id)).scalars())
    assert len(owners) == 1


def test_a_resent_message_id_is_stored_once(server: Server) -> None:
    with server.client(server.write) as client:
        for _ in range(3):
            assert client.post("/v1/track", json={"userId": "u1", "event": "e", "messageId": "same"}).status_code == 202
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


def test_one_bad_message_refuses_the_batch_naming_it(server: Server) -> None:
    with server.client(server.write) as client:
        response = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "ok"}, {"type": "track", "event": "no-user"},
            {"type": "shout", "userId": "u2"}]})
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"batch[1].userId", "batch[2].type"}
    assert stored(server) == {}


def test_not_json_and_not_an_object(server: Server) -> None:
    with server.client(server.write) as client:
        broken = client.post("/v1/track", content=b"{nope", headers={"Content-Type": "application/json"})
        listed = client.post("/v1/track", json=[1, 2])
        form = client.post("/v1/track", data={"event": "x"})
        nul = client.post("/v1/track", json={"userId": "a\x00b", "event": "x"})
        nul_in_batch = client.post("/v1/batch", json={"batch": [
            {"type": "track", "userId": "u1", "event": "x"},
            {"type": "identify", "userId": "u2", "traits": {"email": "a\x00@example.com"}}]})
    assert [r.status_code for r in (broken, listed, form, nul, nul_in_batch)] == [400, 400, 415, 400, 400]
    assert broken.json()["errors"][0]["field"] == "body"
    assert nul.json()["errors"] == [{"field": "userId", "detail": "must not contain NUL characters"}]
    assert nul_in_batch.json()["errors"] == [
        {"field": "batch[1].traits.email", "detail": "must not contain NUL characters"}]


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
    assert response.status_code == 202
    assert len(stored(server)) == count


def test_unknown_routes_and_methods_answer_problem_json(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        missing, wrong_method = client.get("/v1/nothing"), client.get("/v1/track")
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert missing.headers["content-type"] == wrong_method.headers["content-type"] == PROBLEM
