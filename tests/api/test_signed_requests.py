"""Signed requests (v2) over a real server on each backend: a signature is bound to its method,
path, query and body, accepted once by every server on the database, and the old v1 refused
with a message saying how to sign v2. Then hostile credential headers, straight into the app
(any bytes, which no HTTP client would send), are a 401, or a 200 for a valid one, never a 500.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.types import Message

from api.app import create_app
from api.auth import SIGNATURE_HEADER, sign, signing_key
from api.problems import MEDIA_TYPE
from api.settings import Settings
from engine.clock import VirtualClock
from storage import keys
from storage.signature_replays import seen_signatures
from storage.tables import events

from .conftest import Server, start_server

START = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
BODY = json.dumps({"userId": "u1", "event": "signup"}).encode()
TOLERANCE = 300  # Settings.signature_tolerance_seconds


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def served(db: Engine, clock: VirtualClock) -> Iterator[Server]:
    yield from start_server(db, clock=clock)


def now(server: Server) -> int:
    return int(server.settings.clock.now().timestamp())


def signed(server: Server, method: str, path: str, body: bytes = b"", query: str = "",
           admin: bool = False) -> dict[str, str]:
    secret, key_id = (server.admin, server.admin_id) if admin else (server.write, server.write_id)
    return {SIGNATURE_HEADER: sign(secret, key_id, now(server), body, method=method, path=path, query=query)}


def send(server: Server, method: str, path: str, headers: dict[str, str], body: bytes = b"",
         query: str = "") -> httpx.Response:
    url = f"{server.url}{path}" + (f"?{query}" if query else "")
    return httpx.request(method, url, content=body, headers={"Content-Type": "application/json", **headers})


def stored(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_a_track_signature_sent_to_another_route_or_with_a_query_is_401_and_not_spent(served: Server) -> None:
    headers = signed(served, "POST", "/v1/track", BODY)
    for path, query in [("/v1/identify", ""), ("/v1/page", ""), ("/v1/track", "x=1"), ("/v1/track", "userId=u2")]:
        response = send(served, "POST", path, headers, BODY, query)
        assert response.status_code == 401, (path, query)
        assert "does not match this method, path, query and body" in response.json()["detail"]
    assert stored(served.db) == 0
    assert send(served, "POST", "/v1/track", headers, BODY).status_code == 200  # the refusals did not use it up
    assert stored(served.db) == 1


def test_a_signed_read_is_not_a_signed_write_nor_another_query(served: Server) -> None:
    headers = signed(served, "GET", "/v1/journeys", admin=True)
    assert send(served, "POST", "/v1/journeys", headers).status_code == 401  # same path, same empty body
    assert send(served, "GET", "/v1/journeys", headers, query="status=live").status_code == 401
    assert send(served, "GET", "/v1/journeys", headers).status_code == 200


def test_a_signature_covers_the_query_it_was_made_for(served: Server) -> None:
    headers = signed(served, "GET", "/v1/journeys", query="status=live&x=%20", admin=True)
    assert send(served, "GET", "/v1/journeys", headers, query="status=live&x=%20").status_code == 200
    assert send(served, "GET", "/v1/journeys", headers, query="x=%20&status=live").status_code == 401


def test_the_same_request_twice_is_refused_the_second_time(served: Server) -> None:
    headers = signed(served, "POST", "/v1/track", BODY)
    assert send(served, "POST", "/v1/track", headers, BODY).status_code == 200
    replay = send(served, "POST", "/v1/track", headers, BODY)
    assert replay.status_code == 401
    assert replay.headers["content-type"] == MEDIA_TYPE
    assert "used already" in replay.json()["detail"]


def test_a_second_server_on_the_same_database_refuses_what_the_first_accepted(
        served: Server, db: Engine, clock: VirtualClock) -> None:
    # Its own app, engine and key caches: only the database is shared.
    with contextmanager(start_server)(db, clock=clock) as other:
        first = signed(served, "POST", "/v1/track", BODY)
        assert send(served, "POST", "/v1/track", first, BODY).status_code == 200
        replay = send(other, "POST", "/v1/track", first, BODY)
        assert replay.status_code == 401 and "used already" in replay.json()["detail"]
        body = BODY.replace(b"signup", b"login")
        fresh = signed(served, "POST", "/v1/track", body)
        assert send(other, "POST", "/v1/track", fresh, body).status_code == 200
        assert send(served, "POST", "/v1/track", fresh, body).status_code == 401
    assert stored(db) == 2


def test_a_v1_signature_is_refused_saying_how_to_sign_v2(served: Server) -> None:
    t = now(served)
    mac = hmac.new(signing_key(served.write), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    response = send(served, "POST", "/v1/track", {SIGNATURE_HEADER: f"t={t},k={served.write_id},v1={mac}"}, BODY)
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert "v1 signatures" in detail and "sign with v2=" in detail and "api.auth.sign" in detail
    assert stored(served.db) == 0


def test_a_used_signature_is_kept_two_tolerances_past_its_time_then_swept(served: Server, clock: VirtualClock) -> None:
    first = signed(served, "POST", "/v1/track", BODY)
    assert send(served, "POST", "/v1/track", first, BODY).status_code == 200
    with served.db.connect() as conn:
        (expires_at,) = conn.execute(select(seen_signatures.c.expires_at)).one()
    assert expires_at == START + timedelta(seconds=2 * TOLERANCE)
    clock.move_to(expires_at)
    body = BODY.replace(b"signup", b"later")
    assert send(served, "POST", "/v1/track", signed(served, "POST", "/v1/track", body), body).status_code == 200
    with served.db.connect() as conn:
        assert conn.execute(select(seen_signatures.c.expires_at)).scalars().all() == [
            expires_at + timedelta(seconds=2 * TOLERANCE)]


# --------------------------------------------------------------------------- hostile headers, into the app


class App:
    """The app with its lifespan running on an event loop thread of its own, called with a
    hand-made ASGI scope so that header values can be any bytes at all."""

    def __init__(self, portal: BlockingPortal, app: Starlette, settings: Settings, write: str, write_id: int) -> None:
        self.portal, self.app, self.settings, self.write, self.write_id = portal, app, settings, write, write_id

    def post(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes = BODY) -> tuple[int, dict[str, Any]]:
        status, payload = self.portal.call(self._call, path, headers, body)
        return status, json.loads(payload) if payload else {}

    async def _call(self, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
        done = anyio.Event()
        delivered = False
        messages: list[Message] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": unquote(path), "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
                 "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode()), *headers]}
        await self.app(scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        return int(start["status"]), b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


@pytest.fixture
def app(db: Engine, clock: VirtualClock) -> Iterator[App]:
    with db.begin() as conn:
        key, write = keys.create(conn, "write", "producer", START)
    settings = Settings(database_url=db.url.render_as_string(hide_password=False), clock=clock)
    asgi = create_app(settings)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(asgi.router.lifespan_context(asgi)):
        yield App(portal, asgi, settings, write, key.id)


NUMBERS = ["", "0", "1", "+1", " 1", "1 ", "1_000", "١", "²", "٣٤", "0x10", "1e3", "-1", "1.0", "9" * 25, "9" * 5000,
           str(2**31), str(2**63), str(2**64), "\x00", "1\n", "\u00a01"]
MACS = ["", "00", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "é" * 64, " " + "0" * 64]
TEXT = st.text(max_size=80) | st.sampled_from(["", " ", ",", "=", ",,", "t=", "k=", "v2=", "v1=00", "\t", "é", "中"])


@st.composite
def signature_headers(draw: st.DrawFn, t: int, key_id: int, good: str) -> str:
    """The real header (good except for its MAC, unless unchanged) with up to three parts
    changed, added, dropped or junk put in, joined by commas with any spacing: the parser's every
    branch, and beyond."""
    real = {"t": str(t), "k": str(key_id), "v2": good}
    names = draw(st.permutations(sorted(real)))
    parts = [f"{name}={real[name]}" for name in names]
    for _ in range(draw(st.integers(0, 3))):  # change, add or drop a part
        hostile = st.tuples(st.sampled_from(["t", "k", "v2", "v1", "V2", "x", "", " t"]),
                            st.sampled_from(NUMBERS + MACS) | TEXT).map(lambda p: f"{p[0]}={p[1]}")
        change = draw(st.sampled_from(["replace", "replace", "add", "drop", "junk"]))
        at = draw(st.integers(0, max(len(parts) - 1, 0)))
        if change == "replace" and parts:
            name = parts[at].partition("=")[0]
            parts[at] = f"{name}={draw(st.sampled_from(NUMBERS + MACS) | TEXT)}"
        elif change == "add":
            parts.insert(at, draw(hostile | st.sampled_from(sorted(real)).map(lambda n: f"{n}={real[n]}")))
        elif change == "drop" and parts:
            del parts[at]
        elif change == "junk":
            parts.insert(at, draw(TEXT))
    separator = draw(st.sampled_from([",", ", ", " ,", ",\t", ";", "  ,  "]))
    return separator.join(parts)


@st.composite
def authorization_headers(draw: st.DrawFn, key: str) -> str:
    scheme = draw(st.sampled_from(["Bearer", "bearer", "BASIC", "Basic", "Token", "", "Bearer\t"]))
    basic = base64.b64encode(draw(st.sampled_from([f"{key}:", f"{key}:pw", key, ":", f"{key}\u00e9:"]))
                             .encode()).decode()
    value = draw(st.one_of(
        st.just(key), st.just(basic), st.sampled_from(NUMBERS + MACS), TEXT,
        st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
        st.just(key + "x" * 200), st.just(basic.rstrip("=")), st.just("é" + key),
        st.just(base64.b64encode(b"\xff\xfe:").decode())))
    spacing = draw(st.sampled_from([" ", "  ", "", "\t", " \u00a0"]))
    return f"{scheme}{spacing}{value}"


def header_values(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[list[bytes]]:
    """One to three values for a header (sending one twice is a case too), as UTF-8 text or as
    any bytes at all, which the server hands on as latin-1."""
    text = strategy.map(lambda s: s.encode("utf-8", "surrogatepass"))
    value = st.one_of(text, text, text, st.binary(max_size=80))
    return st.one_of(value.map(lambda v: [v]), value.map(lambda v: [v]), value.map(lambda v: [v]),
                     st.lists(value, min_size=2, max_size=3))


def test_hostile_credential_headers_are_a_401_and_valid_ones_a_200_never_a_500(app: App) -> None:
    t = int(app.settings.clock.now().timestamp())
    good = sign(app.write, app.write_id, t, BODY, method="POST", path="/v1/track").rpartition("v2=")[2]
    bearer, basic = f"Bearer {app.write}", "Basic " + base64.b64encode(f"{app.write}:".encode()).decode()

    @settings(max_examples=300, deadline=None)
    @given(sent=st.sampled_from(["authorization", "signature", "both"]),
           authorization=header_values(authorization_headers(app.write) | st.sampled_from([bearer, basic])),
           signature=header_values(signature_headers(t, app.write_id, good)))
    def check(sent: str, authorization: list[bytes] | None, signature: list[bytes] | None) -> None:
        authorization = authorization if sent != "signature" else None
        signature = signature if sent != "authorization" else None
        headers = [(b"authorization", v) for v in authorization or []]
        headers += [(SIGNATURE_HEADER.encode(), v) for v in signature or []]
        status, problem = app.post("/v1/track", headers)
        assert status in (200, 401), (status, problem)
        if status == 401:
            assert problem["status"] == 401 and problem["detail"]
        if authorization is not None and len(authorization) == 1 and authorization[0] in (bearer.encode(),
                                                                                          basic.encode()):
            assert status == 200

    check()


@pytest.mark.parametrize("header", [
    f"t={int(START.timestamp())},k=99999999999999999999999,v2={'0' * 64}",  # the 500 of issue 17
    f"t={int(START.timestamp())},k=99999999999999999999999,v1=00",
    f"t={int(START.timestamp())},k=١,v2={'0' * 64}", f"t=+{int(START.timestamp())},k=1,v2={'0' * 64}",
    f"t={int(START.timestamp())},k=1_0,v2={'0' * 64}", f"t={int(START.timestamp())},t=1,k=1,v2={'0' * 64}",
    f"t={int(START.timestamp())},k=1,v2={'0' * 64},v2={'0' * 64}", f"t={'9' * 5000},k=1,v2={'0' * 64}",
    f"t={int(START.timestamp())},k=1,v2={'A' * 64}", f"t=²,k=1,v2={'0' * 64}", "t=,k=,v2=", ",,,", "",
])
def test_malformed_signature_headers_are_a_401_naming_the_problem(app: App, header: str) -> None:
    status, problem = app.post("/v1/track", [(SIGNATURE_HEADER.encode(), header.encode())])
    assert status == 401
    assert "signature" in problem["detail"] or "v1" in problem["detail"]


def test_two_authorization_headers_are_a_401_even_when_one_is_valid(app: App) -> None:
    bearer = f"Bearer {app.write}".encode()
    assert app.post("/v1/track", [(b"authorization", bearer)])[0] == 200  # and now remembered by header
    status, problem = app.post("/v1/track", [(b"authorization", bearer), (b"authorization", bearer)])
    assert status == 401 and "one Authorization header" in problem["detail"]
