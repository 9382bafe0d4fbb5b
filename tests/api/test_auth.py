"""Who may call what: keys as bearer, as Segment-style Basic, or signed requests."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select

from api.auth import SIGNATURE_HEADER, KeyStore, sign
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
    return {SIGNATURE_HEADER: sign(secret or server.write, server.write_id, now, body, method="POST", path="/v1/track")}


def count(server: Server) -> int:
    with server.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_no_key_is_401_with_the_schemes_named(server: Server) -> None:
    response = track(server, {})
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert response.headers["content-type"] == "application/problem+json"


def test_bearer_and_basic_keys_are_accepted(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 200
    basic = httpx.post(f"{server.url}/v1/track", json=EVENT, auth=(server.write, ""))
    assert basic.status_code == 200
    assert count(server) == 1  # the same derived messageId: a resend


def test_a_wrong_key_is_401(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}x"}).status_code == 401
    assert track(server, {"Authorization": "Basic !!!"}).status_code == 401
    assert count(server) == 0


def test_a_revoked_key_is_401(server: Server) -> None:
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 200
    with server.db.begin() as conn:
        assert keys.revoke(conn, server.write_id, server.settings.clock.now())
    assert track(server, {"Authorization": f"Bearer {server.write}"}).status_code == 401
    body = json.dumps(EVENT).encode()
    assert track(server, signed(server, body), body).status_code == 401


def test_an_admin_route_refuses_a_write_key_and_takes_an_admin_key(server: Server) -> None:
    write = httpx.get(f"{server.url}/v1/journeys", headers={"Authorization": f"Bearer {server.write}"})
    admin = httpx.get(f"{server.url}/v1/journeys", headers={"Authorization": f"Bearer {server.admin}"})
    assert (write.status_code, admin.status_code) == (403, 200)
    assert track(server, {"Authorization": f"Bearer {server.admin}"}).status_code == 200  # admin may send too


def test_a_signed_request_is_accepted_once(server: Server) -> None:
    body = json.dumps(EVENT).encode()
    headers = signed(server, body)
    assert track(server, headers, body).status_code == 200
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
    assert track(server, {SIGNATURE_HEADER: "t=x,k=y,v2=z"}).status_code == 401


@pytest.mark.parametrize(("header", "detail"), [
    ("Bearer", "must be 'Bearer <key>'"), ("Bearer a b", "must be 'Bearer <key>'"), ("", "must be 'Bearer <key>'"),
    ("Bearer\tjf_write_x", "must be 'Bearer <key>'"), ("Bearer jf_write_x!", "not an API key"),
    ("Bearer " + "a" * 129, "not an API key"), ("Bearer " + "a" * 2000, "longer than"),
    ("Digest jf_write_x", "scheme 'Digest' is not accepted"),
    ("Basic " + base64.b64encode(b"jf_write_x").decode(), "base64 of '<key>:'"),
    ("Basic " + base64.b64encode(b":pw").decode(), "user name must be the API key"),
    ("Basic " + base64.b64encode(b"\xff\xfe:").decode(), "base64 of UTF-8"),
    ("Basic " + base64.b64encode(b"jf_write_x:").decode().rstrip("="), "not valid base64"),
    ("Basic " + base64.b64encode(b"jf_write_x:").decode() + "!", "not valid base64"),
    ("Basic " + "QUFB" * 300, "longer than 1030 characters"),
])
def test_a_malformed_authorization_header_is_401_saying_what_is_wrong(server: Server, header: str,
                                                                       detail: str) -> None:
    response = track(server, {"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_a_basic_password_is_ignored_and_the_scheme_is_case_insensitive(server: Server) -> None:
    with_password = "Basic " + base64.b64encode(f"{server.write}:anything".encode()).decode()
    assert track(server, {"Authorization": with_password}).status_code == 200
    assert track(server, {"Authorization": f"bearer {server.write}"}).status_code == 200


@pytest.mark.parametrize("key_id", [0, -1, 2**31, 2**64, int("9" * 4000)])
def test_a_signature_naming_a_key_id_no_key_can_have_is_401(server: Server, key_id: int) -> None:
    """Past 64 bits, SQLite could not even compare the id with its column (a 500, once)."""
    body = json.dumps(EVENT).encode()
    now = int(server.settings.clock.now().timestamp())
    header = sign(server.write, server.write_id, now, body, method="POST", path="/v1/track").replace(
        f"k={server.write_id}", f"k={key_id}")
    assert track(server, {SIGNATURE_HEADER: header}, body).status_code == 401


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_remembered_by_its_header_expires_with_its_cached_verdict(db: Engine) -> None:
    # The header cache must not stretch the revocation delay: a header learnt from a verdict
    # cached at t=0 for 5 s is forgotten at t=5 too, even if it was first seen at t=3.
    with db.begin() as conn:
        _, secret = keys.create(conn, "write", "producer", datetime.now(UTC))
    ticks = Ticks()
    store = KeyStore(db, cache_seconds=5, tolerance_seconds=300, monotonic=ticks)
    bearer, basic = f"Bearer {secret}", "Basic " + base64.b64encode(f"{secret}:".encode()).decode()
    assert store.by_secret(secret, bearer) is not None
    assert store.by_header(bearer) is not None
    ticks.now += 3
    known, key = store.cached(secret, basic)
    assert known and key is not None
    assert store.by_header(basic) == key
    ticks.now += 2
    assert store.by_header(bearer) is None and store.by_header(basic) is None
    assert store.cached(secret) == (False, None)


def test_an_unknown_key_is_cached_but_never_by_header(db: Engine) -> None:
    ticks = Ticks()
    store = KeyStore(db, cache_seconds=5, tolerance_seconds=300, monotonic=ticks)
    assert store.by_secret("jf_write_made_up", "Bearer jf_write_made_up") is None
    assert store.by_header("Bearer jf_write_made_up") is None
    assert store.cached("jf_write_made_up") == (True, None)  # no second query within 5 s
    ticks.now += 5
    assert store.cached("jf_write_made_up") == (False, None)


BOUND = 50


def test_the_caches_stay_bounded_under_fresh_unknown_keys_and_keep_the_valid_ones(db: Engine) -> None:
    """Every entry stays fresh (the clock never moves), which is what let the old caches grow:
    they dropped only expired entries. A flood of made-up keys and key ids displaces only other
    made-up ones; the producer's valid key stays cached by secret, header and id."""
    with db.begin() as conn:
        key, secret = keys.create(conn, "write", "producer", datetime.now(UTC))
    store = KeyStore(db, cache_seconds=60, tolerance_seconds=300, monotonic=Ticks(), max_cached=BOUND)
    bearer = f"Bearer {secret}"
    assert store.by_secret(secret, bearer) == key and store.by_id(key.id) == key
    for n in range(BOUND + 1000):
        assert store.by_secret(f"jf_write_made_up_{n}", f"Bearer jf_write_made_up_{n}") is None
        assert store.by_id(key.id + 1 + n) is None
        assert store._by_secret.sizes() <= (1, BOUND) and store._by_id.sizes() <= (1, BOUND)
    assert store._by_secret.sizes() == (1, BOUND) and store._by_id.sizes() == (1, BOUND)
    assert store._by_header.sizes() == (1, 0)
    assert store.cached(secret) == (True, key) and store.by_header(bearer) == key
    assert store.by_id(key.id) == key
    assert store.cached(f"jf_write_made_up_{BOUND + 999}") == (True, None)  # the most recent are kept
    assert store.cached("jf_write_made_up_0") == (False, None)  # the least recent went


def test_the_header_cache_is_bounded_when_one_valid_key_comes_in_many_headers(db: Engine) -> None:
    """Basic ignores the password, so one key has endless headers; each is remembered, boundedly."""
    with db.begin() as conn:
        key, secret = keys.create(conn, "write", "producer", datetime.now(UTC))
    store = KeyStore(db, cache_seconds=60, tolerance_seconds=300, monotonic=Ticks(), max_cached=BOUND)
    headers = ["Basic " + base64.b64encode(f"{secret}:{n}".encode()).decode() for n in range(BOUND + 1000)]
    for header in headers:
        assert store.by_secret(secret, header) == key
        assert store._by_header.sizes()[0] <= BOUND
    assert store.by_header(headers[-1]) == key and store.by_header(headers[0]) is None
    assert store._by_secret.sizes() == (1, 0)
