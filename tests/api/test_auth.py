"""Who may call what: keys as bearer, as Segment-style Basic, or signed requests."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from api.auth import SIGNATURE_HEADER, sign
from storage import keys
from storage.tables import events

from .conftest import Server

EVENT = {"userId": "u1", "event": "signup"}


def track(server: Server, headers: dict[str, str], body: bytes | None = None) -> httpx.Response:
    content = body if body is not None else json.dumps(EVENT).encode()
    return httpx.post(f"{server.url}/v1/track", content=content,
                      headers={"Content-Type": "application/json", **headers})


def signed(server: Server, body: bytes, shift: timedelta = timedelta(0), secret: str | None = None) -> dict[str, str]:
    now = int((server.settings.clock.now() + shift).timestamp())
    return {SIGNATURE_HEADER: sign(secret or server.write, server.write_id, now, body)}


def count(server: Server) -> int:
    with server.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_no_key_is_401_with_the_schemes_named(server: Server) -> None:
    response = track(server, {})
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert response.headers["content-type"] == "application/problem+json"


def test_bearer_and_basic_keys_are_accepted(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 202
    basic = httpx.post(f"{server.url}/v1/track", json=EVENT, auth=(server.write, ""))
    assert basic.status_code == 202
    assert count(server) == 1  # the same derived messageId: a resend


def test_a_wrong_key_is_401(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}x"}).status_code == 401
    assert track(server, {"Authorization": "Basic !!!"}).status_code == 401
    assert count(server) == 0


def test_a_revoked_key_is_401(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 202
    with server.db.begin() as conn:
        assert keys.revoke(conn, server.write_id, server.settings.clock.now())
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 401
    body = json.dumps(EVENT).encode()
    assert track(server, signed(server, body), body).status_code == 401


def test_an_admin_route_refuses_a_write_key_and_takes_an_admin_key(server: Server) -> None:
    write = httpx.get(f"{server.url}/v1/journeys", headers={"Authorization": f"Bearer {server.write}"})
    admin = httpx.get(f"{server.url}/v1/journeys", headers={"Authorization": f"Bearer {server.admin}"})
    assert (write.status_code, admin.status_code) == (403, 200)
    assert track(server, {"Authorization": f"Bearer {server.admin}"}).status_code == 202  # admin may send too


def test_a_signed_request_is_accepted_once(server: Server) -> None:
    body = json.dumps(EVENT).encode()
    headers = signed(server, body)
    assert track(server, headers, body).status_code == 202
    replay = track(server, headers, body)
    assert replay.status_code == 401
    assert "used already" in replay.json()["detail"]


def test_a_signature_over_other_bytes_or_with_another_key_is_401(server: Server) -> None:
    body = json.dumps(EVENT).encode()
    tampered = track(server, signed(server, body), body.replace(b"signup", b"signup2"))
    wrong_key = track(server, signed(server, body, secret=server.admin), body)
    assert (tampered.status_code, wrong_key.status_code) == (401, 401)
    assert count(server) == 0


@pytest.mark.parametrize("shift", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_stale_signature_is_401(server: Server, shift: timedelta) -> None:
    body = json.dumps(EVENT).encode()
    response = track(server, signed(server, body, shift), body)
    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"]


def test_a_malformed_signature_header_is_401(server: Server) -> None:
    assert track(server, {SIGNATURE_HEADER: "t=1"}).status_code == 401
    assert track(server, {SIGNATURE_HEADER: "t=x,k=y,v1=z"}).status_code == 401
