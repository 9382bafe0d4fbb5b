"""How a provider's request goes out, and what a failure to send it means.

HTTP/1.1 goes through aiohttp and HTTP/2 (APNs) through httpx. The reason is the CPU each
request costs, which was what limited the dispatcher. Measured on the 2-core machine (shared,
so ranges) against benchmarks/dispatch.py's 20 ms loopback provider, 200 requests in flight, one
process:

- httpx's transport, one connection per slot (`Slots`): 600-940 µs of CPU per request;
- a bare aiohttp session: 150-260 µs;
- `AiohttpTransport` below: 220-370 µs. Most of the difference from bare aiohttp is building
  the `httpx.Response` (and its `httpx.Request`) that providers are given. That takes 14 µs
  timed alone and 40-60 µs in the send loop. An `httpx.Response` subclass that skipped httpx's
  read would save 10-25 µs of it, but it would have to set httpx's private state, so it is not
  done.

End to end (benchmarks/dispatch.py --rows 4000, SQLite) the dispatcher went from 740-1,140 µs
of CPU per message to 460-550 µs, and from 0.65-0.81 times the messages/s of the httpx floor to
1.10-1.41 times. The target is 2,000 messages/s on one process, which httpx's CPU alone put out
of reach. aiohttp has no HTTP/2 client, so APNs (HTTP/2 only) stays on httpx.

Both paths answer with an `httpx.Response`, read in full, so a provider parses an answer the
same way whichever client brought it. Both report a failure to send as one of two exceptions,
which `HttpProvider` turns into a `DeliveryError` using the provider's name and `idempotent`:

- `NotSent`: no byte of the request can have reached the server (no connection: refused, DNS,
  TLS, connect timeout, a URL that cannot be called);
- `MaybeSent`: there was a connection and the request may have left, so the server may have
  acted on it (a timeout waiting for the answer, a disconnect, a broken or cut-off response).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import ssl
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
import httpx
import yarl
from aiohttp.tracing import Trace

# How long an idle keep-alive connection is kept. 5 s is httpx's default (`keepalive_expiry`),
# which the providers used before. aiohttp's default is 15 s, longer than many servers keep
# one (uvicorn: 5 s), and a connection the server has just closed fails the next request on it.
KEEPALIVE_SECONDS = 5.0
# httpx exceptions that come before a single byte of the request can have been processed.
HTTPX_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
                  httpx.ProxyError, httpx.InvalidURL)
# aiohttp would otherwise add these: httpx's transport sent neither Accept nor Accept-Encoding,
# and set no Content-Type unless asked (aiohttp would say application/octet-stream for bytes).
SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type")
BODY_METHODS = ("POST", "PUT", "PATCH")  # where httpx sends `Content-Length: 0` for no body
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class NotSent(Exception):
    """The request certainly did not reach the server; the message says why."""


class MaybeSent(Exception):
    """The request may have reached the server, and what it did with it is unknown."""


class Transport(Protocol):
    async def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None, json: Any,
                   data: Mapping[str, str] | None) -> httpx.Response:
        """The response, read in full, whatever its status; `NotSent` or `MaybeSent` if there is none."""
        ...

    async def aclose(self) -> None: ...


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --------------------------------------------------------------------------- HTTP/2: httpx


class Slots:
    """`size` httpx transports of one keep-alive connection each, each lent to one request at a time.

    Only HTTP/2 still goes through httpx (see the module docstring); HTTP/1.1 goes through aiohttp,
    whose connection pool has none of the trouble below. Why not one `httpx.AsyncClient` whose
    pool is sized to the concurrency: httpcore's pool (1.0) rescans every connection on every
    request event. It also hands an idle connection to a second queued request before the first
    has marked it busy, so one of them fails with `ConnectionNotAvailable` and starts over
    (counted: one retry per request at 8 connections, five at 50). Side by side on the 2-core
    machine against benchmarks/dispatch.py's 20 ms loopback provider, 200 in flight: one pool of
    200 made 77-96 requests/s at 4-6 ms of CPU each, pools of 8 used in turn 250-550/s at 1.4 ms,
    and a connection per slot 630-690/s at 0.8-0.9 ms. The benchmark prints the one-pool figure
    beside the dispatcher in every run. A slot never races and costs O(1) to find. They are
    handed out last in, first out, so that a small load keeps reusing the same warm connections
    and the rest stay unopened."""

    def __init__(self, size: int, make: Callable[[], httpx.AsyncHTTPTransport]) -> None:
        self.transports = [make() for _ in range(max(1, size))]
        self._free: asyncio.LifoQueue[httpx.AsyncHTTPTransport] = asyncio.LifoQueue()
        for transport in reversed(self.transports):
            self._free.put_nowait(transport)

    async def take(self) -> httpx.AsyncHTTPTransport:
        return await self._free.get()

    def give(self, transport: httpx.AsyncHTTPTransport) -> None:
        self._free.put_nowait(transport)

    async def aclose(self) -> None:
        for transport in self.transports:
            await transport.aclose()


class HttpxTransport:
    """Requests straight to httpx's transports (`httpx.Request` in, `httpx.Response` out), not
    through `AsyncClient`. The client's layer (URL and header merging, cookie extraction, auth
    and redirect flows, event hooks) costs CPU on every send: `build_request` and
    `extract_cookies` alone were 13% of the send path under cProfile. A provider needs none of
    it: no cookies, no redirects, and auth is a header it sets itself."""

    def __init__(self, timeout: float, connect_timeout: float, connections: int, tls: ssl.SSLContext,
                 http2: bool = True) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.slots = Slots(connections, lambda: httpx.AsyncHTTPTransport(verify=tls, http2=http2, limits=limits))
        self._extensions = {"timeout": httpx.Timeout(timeout, connect=connect_timeout).as_dict()}

    async def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None, json: Any,
                   data: Mapping[str, str] | None) -> httpx.Response:
        try:
            request = httpx.Request(method, url, headers=headers, content=content, json=json, data=data,
                                    extensions=self._extensions)
        except httpx.InvalidURL as error:
            raise NotSent(describe(error)) from error
        transport = await self.slots.take()
        try:
            response = await transport.handle_async_request(request)
            try:
                await response.aread()  # the connection goes back to its slot's pool once read
            except BaseException:
                await response.aclose()
                raise
        except HTTPX_NOT_SENT as error:
            raise NotSent(describe(error)) from error
        except httpx.TransportError as error:
            raise MaybeSent(describe(error)) from error
        finally:
            self.slots.give(transport)
        response.request = request
        return response

    async def aclose(self) -> None:
        await self.slots.aclose()


# --------------------------------------------------------------------------- HTTP/1.1: aiohttp


class _Attempt:
    """One send through aiohttp: whether it got as far as a connection."""

    __slots__ = ("connected",)

    def __init__(self) -> None:
        self.connected = False


# The send in progress in this task, so that `_Connector` can mark it connected. aiohttp's total
# timeout raises a bare TimeoutError wherever it strikes; this is how we know which side of the
# connection it struck on.
_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("journeyflow_http_attempt", default=None)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, marking the current `_Attempt` once it has a connection: up to there,
    nothing of the request has been written."""

    async def connect(self, req: aiohttp.ClientRequest, traces: list[Trace],
                      timeout: aiohttp.ClientTimeout) -> aiohttp.connector.Connection:
        connection = await super().connect(req, traces, timeout)
        attempt = _ATTEMPT.get()
        if attempt is not None:
            attempt.connected = True
        return connection


class _Unrepeated(Exception):
    """A connection error carried past aiohttp's automatic resend (see `_never_resend`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(describe(error))
        self.error = error


async def _never_resend(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
                        ) -> aiohttp.ClientResponse:
    """aiohttp sends a PUT (or another method RFC 9110 calls idempotent) a second time by itself
    when the connection fails under the first one (`ClientOSError`, `ServerDisconnectedError`),
    and has no setting to stop it. A provider's PUT is a message (the generic provider may use
    PUT), and whether it may go twice is the provider's `idempotent` to decide, not the method's.
    Wrapped in an exception that is none of those two, the error passes aiohttp's resend, and
    `AiohttpTransport.send` unwraps it."""
    try:
        return await handler(request)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as error:
        raise _Unrepeated(error) from error


@lru_cache(maxsize=1024)
def _target(url: str) -> tuple[httpx.URL, yarl.URL]:
    """`url` as httpx reads it, and the same for aiohttp. aiohttp gets httpx's encoding
    (`encoded=True`), so the request line is the one httpx sent. yarl would quote and unquote
    otherwise (`%zz` to `%25zz`, `%41` to `A`, a space in the query to `+`, `[ ] | \\ ^`
    escaped). User info is dropped, because httpx's transport never sent it and aiohttp would
    make it a Basic Authorization header. Cached, because most providers call one URL for
    every message."""
    parsed = httpx.URL(url)
    if parsed.userinfo:
        parsed = parsed.copy_with(userinfo=b"")
    return parsed, yarl.URL(str(parsed), encoded=True)


def encode(method: str, headers: dict[str, str], content: bytes | None, json: Any,
           data: Mapping[str, str] | None) -> tuple[dict[str, str], bytes | None]:
    """The headers and body httpx sends for these arguments, in the same order. This follows
    httpx's `encode_request` and `Request._prepare`, for the three kinds of body providers
    use: bytes as given, a form urlencoded, compact UTF-8 JSON. `headers` (the caller's, in
    order) win over the defaults whatever their case. aiohttp adds Host in front, as httpx does."""
    if content is not None:
        body: bytes | None = content
        defaults = {"Content-Length": str(len(content))} if content else {}
    elif data:
        body = urlencode(list(data.items()), doseq=True).encode("utf-8")
        defaults = {"Content-Length": str(len(body)), "Content-Type": FORM}
    elif json is not None:
        body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        defaults = {"Content-Length": str(len(body)), "Content-Type": JSON}
    else:
        body, defaults = None, {}
    present = {name.lower() for name in headers}
    sent = dict(headers)
    for name, value in defaults.items():
        if name.lower() not in present:
            sent[name] = value
    if method in BODY_METHODS and "Content-Length" not in defaults and not (
            present & {"content-length", "transfer-encoding"}):
        sent = {"Content-Length": "0", **sent}  # httpx puts it straight after Host
    return sent, body


class AiohttpTransport:
    """Requests through one `aiohttp.ClientSession`, with a pool of `connections` keep-alive
    connections (across hosts). It keeps no cookies, does not follow redirects, reads no proxy
    or .netrc from the environment, and does not decompress: the body goes to the
    `httpx.Response` as it came, and httpx decodes it as it did when it read the answer itself.
    Timeouts: `timeout` for the whole request (connect, send, answer), and `connect_timeout` of
    it for getting a connection.

    The session is made on the first send, in the running loop, because providers are built
    outside one (the settings check, the CLI), and aiohttp binds a session to its loop. Use a
    provider in one event loop only."""

    def __init__(self, timeout: float, connect_timeout: float, connections: int, tls: ssl.SSLContext) -> None:
        self.timeout = timeout
        self._timeouts = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self.connections = max(1, connections)  # aiohttp reads a limit of 0 as no limit
        self.tls = tls
        self.session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = _Connector(limit=self.connections, ssl=self.tls, keepalive_timeout=KEEPALIVE_SECONDS)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeouts, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
            auto_decompress=False, skip_auto_headers=SKIP_AUTO_HEADERS, middlewares=(_never_resend,))
        return self.session

    async def send(self, method: str, url: str, headers: dict[str, str], content: bytes | None, json: Any,
                   data: Mapping[str, str] | None) -> httpx.Response:
        session = self.session or self._open()
        try:
            target, wire_target = _target(url)
        except httpx.InvalidURL as error:
            raise NotSent(describe(error)) from error
        sent, body = encode(method, headers, content, json, data)
        # The request as httpx would have built it, for `response.request`. It is built before
        # sending, so that headers httpx refuses (not ASCII) still fail before anything goes out.
        # `sent` already holds its defaults, so the body goes in as a stream, which skips
        # encoding it again (4 µs instead of 11). Host is httpx's netloc, which is what aiohttp sends.
        request = httpx.Request(method, target, headers={"Host": target.netloc.decode("ascii"), **sent},
                                stream=httpx.ByteStream(body or b""))
        request.read()
        attempt = _Attempt()
        token = _ATTEMPT.set(attempt)
        try:
            async with session.request(method, wire_target, headers=sent, data=body, allow_redirects=False
                                       ) as answer:
                raw = await answer.read()
            status, reason, raw_headers = answer.status, answer.reason, answer.raw_headers
            version = answer.version or aiohttp.HttpVersion11
        except _Unrepeated as wrapped:
            raise self._failure(wrapped.error, attempt) from wrapped.error
        except (aiohttp.ClientError, OSError) as error:  # TimeoutError is an OSError
            raise self._failure(error, attempt) from error
        finally:
            _ATTEMPT.reset(token)
        response = httpx.Response(
            status, headers=raw_headers, stream=httpx.ByteStream(raw), request=request,
            extensions={"http_version": f"HTTP/{version.major}.{version.minor}".encode(),
                        "reason_phrase": (reason or "").encode("ascii", "replace")})
        response.read()  # decodes the body by its Content-Encoding, as httpx's own read did
        return response

    def _failure(self, error: BaseException, attempt: _Attempt) -> NotSent | MaybeSent:
        text = describe(error)
        if type(error) is TimeoutError:  # the total timeout, which says nothing itself
            text = f"TimeoutError: no {'answer' if attempt.connected else 'connection'} within {self.timeout:g} s"
        return MaybeSent(text) if attempt.connected else NotSent(text)

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
