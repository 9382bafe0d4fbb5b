"""How providers send over HTTP/1.1 (aiohttp) and HTTP/2 (httpx), against real servers on
loopback: the bytes on the wire, keep-alive, and what each way a request can fail means.

The server here is a bare socket one, not uvicorn, because the tests need to control the
connection itself: close it mid-answer, stall, trickle, refuse to accept, count the accepts."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from actions.errors import PermanentFailure, RetryableFailure, UncertainOutcome
from actions.providers import base, build_provider
from actions.providers.base import USER_AGENT, Delivery, HttpProvider
from actions.providers.transport import AiohttpTransport, HttpxTransport
from engine.clock import VirtualClock
from tests.actions.conftest import HANG_TIMEOUT, NOW, SENDING_TIMEOUT, Remote, apns_app, serve, settings

T = TypeVar("T")
STALL_LIMIT_SECONDS = 10.0
OK_JSON = b'{"id":"gw-1"}'

# What the server does with a request: answer these bytes, or act on the socket itself.
Answer = bytes | Callable[[socket.socket], None]


def response(status: str = "200 OK", body: bytes = OK_JSON, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Content-Type: application/json", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class RawServer:
    """An HTTP/1.1 server on a free loopback port, one thread per connection. It reads each
    request whole (head, then a Content-Length body), records its exact bytes, and answers what
    `answer(request)` says. It counts the connections it accepted."""

    def __init__(self, answer: Callable[[bytes], Answer] = lambda request: response(), backlog: int = 64) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.released = threading.Event()  # ends stalls, so that the server can stop
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(backlog)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                request, buffer = head + b"\r\n\r\n" + buffer[:length], buffer[length:]
                with self._lock:
                    self.requests.append(request)
                answer = self.answer(request)
                if isinstance(answer, bytes):
                    conn.sendall(answer)
                else:
                    answer(conn)
                    return

    def stall(self, conn: socket.socket) -> None:
        """Say nothing (until the test ends)."""
        self.released.wait(STALL_LIMIT_SECONDS)

    def close(self) -> None:
        self.released.set()
        self.listener.close()


def hang_up(conn: socket.socket) -> None:
    """Close the connection without a word: the request arrived, no answer comes."""


def cut_off(conn: socket.socket) -> None:
    """Promise 100 bytes of body, send 10, close."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{\"id\":\"gw-")


@pytest.fixture
def raw() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def make(answer: Callable[[bytes], Answer] | None = None, backlog: int = 64) -> RawServer:
        server = RawServer(answer, backlog) if answer else RawServer(backlog=backlog)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()


def run(use: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(use())


def gateway(url: str, idempotent: bool, method: str = "POST", timeout: float = SENDING_TIMEOUT) -> dict[str, Any]:
    config: dict[str, Any] = {"url": f"{url}/v2/send", "method": method, "message_id_field": "id",
                              "body": '{"mobile": {{ to | tojson }}, "content": {{ text | tojson }}}'}
    if idempotent:
        config["idempotency_header"] = "X-Request-Id"
    return {"provider": "http", "timeout_seconds": timeout, "http": config}


def send_sms(config: dict[str, Any], times: int = 1) -> list[Any]:
    """Send `times` messages one after another through one provider; the receipts."""
    async def go() -> list[Any]:
        provider = build_provider("sms", settings(sms=config), VirtualClock(NOW))
        try:
            return [await provider.send(Delivery(i, f"41/s{i}", "sms", "+8613800000000", text="hi"))
                    for i in range(times)]
        finally:
            await provider.aclose()

    return asyncio.run(go())


# --------------------------------------------------------------------------- which client


def test_http1_providers_send_through_aiohttp_and_http2_ones_through_httpx() -> None:
    fcm = build_provider("push", settings(push={"provider": "fcm", "fcm": {
        "project_id": "p", "access_token": "t", "base_url": "http://127.0.0.1:9"}}), VirtualClock(NOW))
    apns = build_provider("push", settings(push={"provider": "apns", "apns": {
        "topic": "t", "provider_token": "t", "base_url": "http://127.0.0.1:9"}}), VirtualClock(NOW))
    assert isinstance(fcm, HttpProvider) and isinstance(apns, HttpProvider)
    assert isinstance(fcm.transport, AiohttpTransport) and fcm.slots is None
    assert fcm.transport.session is None  # built outside a loop: the session waits for the first send
    assert isinstance(apns.transport, HttpxTransport) and apns.slots is apns.transport.slots is not None
    assert all(t._pool._http2 for t in apns.slots.transports)

    async def close() -> None:
        await fcm.aclose()
        await apns.aclose()

    run(close)


def test_an_http2_provider_still_speaks_http2_through_httpx() -> None:
    generator = serve(apns_app(Remote()))
    url = next(generator)
    try:
        provider = HttpProvider(2.0, VirtualClock(NOW), http2=True)

        async def go() -> httpx.Response:
            try:
                return await provider.request("POST", f"{url}/3/device/{'a' * 64}", json={"aps": {}},
                                              headers={"authorization": "bearer apns-provider-token",
                                                       "apns-topic": "t"})
            finally:
                await provider.aclose()

        answered = run(go)
        # Over cleartext httpx cannot upgrade to HTTP/2 (no ALPN), so it says HTTP/1.1; what
        # matters is that httpx, not aiohttp, sent it, with HTTP/2 enabled.
        assert answered.status_code == 200 and answered.extensions["http_version"] == b"HTTP/1.1"
        assert isinstance(provider.transport, HttpxTransport)
    finally:
        next(generator, None)


def test_the_session_is_made_on_first_use_and_closed_with_the_provider(raw: Callable[..., RawServer]) -> None:
    server = raw()
    provider = HttpProvider(0.5, VirtualClock(NOW))
    assert isinstance(provider.transport, AiohttpTransport)
    transport = provider.transport

    async def go() -> None:
        await provider.request("POST", f"{server.url}/x", json={"a": 1})
        session = transport.session
        assert session is not None and not session.closed
        await provider.aclose()
        assert session.closed and transport.session is None

    run(go)


# --------------------------------------------------------------------------- the bytes on the wire


WIRE_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/projects/p/messages:send", {"json": {"message": {"token": "李", "n": [1, 2.5, None, True]}},
                                              "headers": {"Authorization": "Bearer t"}}),
    ("POST", "/2010-04-01/Accounts/AC1/Messages.json", {"data": {"To": "+86 138", "Body": "你好 & =x+y"},
                                                        "headers": {"Authorization": "Basic QUM6eA=="}}),
    ("POST", "/hook", {"content": b'{"a":1}', "headers": {"Content-Type": "application/json",
                                                         "Idempotency-Key": "9/credit"}}),
    ("PUT", "/v2/send", {"content": b"plain bytes", "headers": {"X-Request-Id": "k"}}),
    ("POST", "/empty", {}),
    ("POST", "/empty-bytes", {"content": b""}),
    ("POST", "/odd path/%zz/%41?x=1 2&y=李&z=[a]|b", {"json": {}}),
    ("POST", "/own-type", {"json": {"a": 1}, "headers": {"content-type": "application/vnd.x+json"}}),
]


@pytest.mark.parametrize(("method", "path", "arguments"), WIRE_CASES, ids=[c[1] for c in WIRE_CASES])
def test_requests_go_out_byte_for_byte_as_httpx_sent_them(raw: Callable[..., RawServer], method: str, path: str,
                                                          arguments: dict[str, Any]) -> None:
    server = raw()
    url = f"{server.url}{path}"
    headers = arguments.get("headers", {})
    body = {key: value for key, value in arguments.items() if key != "headers"}

    async def both() -> None:
        transport = httpx.AsyncHTTPTransport()  # how every provider sent before
        answer = await transport.handle_async_request(
            httpx.Request(method, url, headers={"User-Agent": USER_AGENT, **headers}, **body))
        await answer.aread()
        await transport.aclose()
        provider = HttpProvider(2.0, VirtualClock(NOW))
        try:
            response = await provider.request(method, url, headers=headers, **body)
        finally:
            await provider.aclose()
        assert response.json() == {"id": "gw-1"}
        assert response.request.method == method and response.request.url == httpx.URL(url)
        assert response.request.content == server.requests[1].partition(b"\r\n\r\n")[2]

    run(both)
    by_httpx, by_us = server.requests
    assert by_us == by_httpx


def test_url_credentials_are_not_sent(raw: Callable[..., RawServer]) -> None:
    """httpx's transport never sent them, and aiohttp would make them an Authorization header."""
    server = raw()
    provider = HttpProvider(2.0, VirtualClock(NOW))

    async def go() -> None:
        try:
            await provider.request("POST", server.url.replace("//", "//user:secret@") + "/x", json={},
                                   headers={"Authorization": "Bearer mine"})
        finally:
            await provider.aclose()

    run(go)
    [sent] = server.requests
    assert b"Authorization: Bearer mine\r\n" in sent and b"secret" not in sent and b"Basic" not in sent


def test_a_header_httpx_refuses_still_fails_before_anything_is_sent(raw: Callable[..., RawServer]) -> None:
    server = raw()
    provider = HttpProvider(2.0, VirtualClock(NOW))

    async def go() -> None:
        try:
            await provider.request("POST", f"{server.url}/x", json={}, headers={"Authorization": "Bearer café"})
        finally:
            await provider.aclose()

    with pytest.raises(UnicodeEncodeError):
        run(go)
    assert server.requests == []


# --------------------------------------------------------------------------- keep-alive, cookies, redirects


def test_sequential_sends_reuse_one_keep_alive_connection(raw: Callable[..., RawServer]) -> None:
    server = raw()
    receipts = send_sms(gateway(server.url, idempotent=False), times=25)
    assert [r.provider_message_id for r in receipts] == ["gw-1"] * 25
    assert (len(server.requests), server.connections) == (25, 1)


def test_concurrent_sends_open_at_most_the_provider_s_connections(raw: Callable[..., RawServer]) -> None:
    def slow(request: bytes) -> Answer:
        time.sleep(0.02)
        return response()

    server = raw(slow)
    provider = HttpProvider(5.0, VirtualClock(NOW), connections=4)

    async def go() -> None:
        try:
            await asyncio.gather(*(provider.request("POST", f"{server.url}/x", json={"n": n}) for n in range(40)))
        finally:
            await provider.aclose()

    run(go)
    assert len(server.requests) == 40 and server.connections == 4


def test_cookies_are_not_kept_and_redirects_not_followed(raw: Callable[..., RawServer]) -> None:
    def answer(request: bytes) -> Answer:
        if request.startswith(b"POST /first"):
            return response("200 OK", OK_JSON, "Set-Cookie: session=abc; Path=/")
        return response("302 Found", b"", f"Location: http://127.0.0.1:{server.port}/elsewhere")

    server = raw(answer)
    provider = HttpProvider(2.0, VirtualClock(NOW))

    async def go() -> None:
        try:
            # By name: aiohttp's cookie jar would ignore a cookie from an IP address anyway.
            named = f"http://localhost:{server.port}"
            await provider.request("POST", f"{named}/first", json={})
            with pytest.raises(PermanentFailure, match="HTTP 302"):
                await provider.request("POST", f"{named}/second", json={})
        finally:
            await provider.aclose()

    run(go)
    assert len(server.requests) == 2  # the redirect was not followed
    assert b"cookie" not in server.requests[1].lower()


def test_the_environment_s_proxy_is_not_used(raw: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    server = raw()
    assert send_sms(gateway(server.url, idempotent=False))[0].provider_message_id == "gw-1"


def test_a_gzipped_answer_is_decoded_as_httpx_decoded_it(raw: Callable[..., RawServer]) -> None:
    packed = gzip.compress(b'{"id":"gw-zip"}')
    server = raw(lambda request: response("200 OK", packed, "Content-Encoding: gzip"))
    assert send_sms(gateway(server.url, idempotent=False))[0].provider_message_id == "gw-zip"
    assert b"accept-encoding" not in server.requests[0].lower()  # nor did we ask for it


# --------------------------------------------------------------------------- what a failure means


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_refused_connection_is_retryable_whoever_the_provider(idempotent: bool) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryableFailure, match=r"^http: could not connect: ClientConnectorError"):
        send_sms(gateway(f"http://127.0.0.1:{port}", idempotent))


@pytest.mark.parametrize("url", ["http://no-such-host.invalid/x",  # the client's own lookup fails (the guard's did not)
                                 "ftp://127.0.0.1/x", "127.0.0.1/x", "http://[::1/x"])
def test_a_url_that_cannot_be_called_is_not_sent(url: str) -> None:
    provider = HttpProvider(0.5, VirtualClock(NOW))

    async def go() -> None:
        try:
            await provider.request("POST", url, json={})
        finally:
            await provider.aclose()

    with pytest.raises(RetryableFailure, match="could not connect"):
        run(go)


def unaccepting() -> tuple[RawServer, list[socket.socket]]:
    """A listener that never accepts, its queue filled by connections of ours: the next SYN goes
    unanswered, so connecting to it waits until a timeout."""
    server = RawServer(backlog=0)
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", server.port))
    return server, fillers


def test_no_connection_within_the_timeout_is_not_sent(raw: Callable[..., RawServer]) -> None:
    """With a 0.5 s timeout the connect limit is the whole timeout, so it is the total timeout
    that strikes, while connecting: still nothing was sent."""
    server, fillers = unaccepting()
    try:
        started = time.monotonic()
        with pytest.raises(RetryableFailure, match=r"could not connect: TimeoutError: no connection within 0\.5 s"):
            send_sms(gateway(server.url, idempotent=False, timeout=HANG_TIMEOUT))
        assert time.monotonic() - started < 3
        assert server.requests == []
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_the_connect_timeout_is_its_own_part_of_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "CONNECT_TIMEOUT_SECONDS", 0.3)
    server, fillers = unaccepting()
    try:
        started = time.monotonic()
        with pytest.raises(RetryableFailure, match="could not connect: ConnectionTimeoutError"):
            send_sms(gateway(server.url, idempotent=False, timeout=5.0))
        assert time.monotonic() - started < 3
    finally:
        for filler in fillers:
            filler.close()
        server.close()


@pytest.mark.parametrize(("behaviour", "says"), [
    ("hang up", "ServerDisconnectedError"),
    ("cut off", "ClientPayloadError"),
    ("stall", r"TimeoutError: no answer within 0\.5 s"),
])
@pytest.mark.parametrize("idempotent", [False, True])
def test_a_failure_after_sending_is_uncertain_unless_the_provider_deduplicates(
        raw: Callable[..., RawServer], behaviour: str, says: str, idempotent: bool) -> None:
    holder: list[RawServer] = []
    server = raw(lambda request: {"hang up": hang_up, "cut off": cut_off, "stall": holder[0].stall}[behaviour])
    holder.append(server)
    expected = RetryableFailure if idempotent else UncertainOutcome
    shape = "after sending; retried under the same key" if idempotent else "after the request was sent: it may have"
    started = time.monotonic()
    with pytest.raises(expected, match=f"^http: {says}.*{shape}") as raised:
        send_sms(gateway(server.url, idempotent, timeout=HANG_TIMEOUT))
    assert type(raised.value) is expected
    assert time.monotonic() - started < 3
    assert len(server.requests) == 1


def test_a_put_is_never_sent_again_by_the_client_itself(raw: Callable[..., RawServer]) -> None:
    """aiohttp resends a PUT whose connection failed; a PUT to a gateway without an idempotency
    key is a message that may have gone out, and only the dispatcher decides about it."""
    server = raw(lambda request: hang_up)
    with pytest.raises(UncertainOutcome, match="ServerDisconnectedError"):
        send_sms(gateway(server.url, idempotent=False, method="PUT"))
    assert len(server.requests) == 1


def test_a_put_on_a_connection_the_server_closed_is_not_sent_twice(raw: Callable[..., RawServer]) -> None:
    """The classic case for a client's own resend: the second request goes out on a kept-alive
    connection the server is closing. It may have been received; it is not resent."""
    count = 0

    def answer(request: bytes) -> Answer:
        nonlocal count
        count += 1
        return response() if count == 1 else hang_up

    server = raw(answer)
    with pytest.raises(UncertainOutcome):
        send_sms(gateway(server.url, idempotent=False, method="PUT"), times=2)
    assert (len(server.requests), server.connections) == (2, 1)


def test_a_trickling_answer_is_cut_off_at_the_timeout(raw: Callable[..., RawServer]) -> None:
    """The timeout is for the whole request (as docs/actions.md says), not for each read: a
    server that keeps sending a byte at a time cannot hold the send past it."""
    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b" ")
                time.sleep(0.05)
        except OSError:
            pass

    server = raw(lambda request: trickle)
    started = time.monotonic()
    with pytest.raises(UncertainOutcome, match=r"TimeoutError: no answer within 0\.5 s"):
        send_sms(gateway(server.url, idempotent=False, timeout=HANG_TIMEOUT))
    assert time.monotonic() - started < 2


def test_an_answer_sent_as_it_should_is_read_whatever_its_framing(raw: Callable[..., RawServer]) -> None:
    def chunked(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                     b"5\r\n{\"id\"\r\n9\r\n:\"gw-ch\"}\r\n0\r\n\r\n")

    server = raw(lambda request: chunked)
    provider = HttpProvider(2.0, VirtualClock(NOW))

    async def go() -> httpx.Response:
        try:
            return await provider.request("POST", f"{server.url}/x", json={})
        finally:
            await provider.aclose()

    answered = run(go)
    assert answered.json() == {"id": "gw-ch"}
    assert "content-length" not in answered.headers  # the answer's own headers, none added
    assert answered.reason_phrase == "OK" and answered.http_version == "HTTP/1.1"

