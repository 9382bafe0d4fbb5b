"""What every provider is given and gives back, and the HTTP plumbing they share.

A provider turns one `Delivery` (a message already rendered and addressed) into one request,
and either returns a `Receipt` or raises one of the `DeliveryError`s that tell the dispatcher
what to do next. The one judgement that needs care is a failure *after* the request left:
only a provider that the remote side deduplicates by our key (`idempotent`) may call that
retryable; for the others it is an `UncertainOutcome`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from engine.clock import Clock

from ..backoff import parse_retry_after
from ..errors import PermanentFailure, RetryableFailure, SettingsInvalid, UncertainOutcome
from ..settings import Secret, Section

USER_AGENT = "Journeyflow-Dispatcher/0.1"
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_DETAIL_CHARS = 300  # how much of an error response is kept in last_error
# How many requests a provider may have in flight at once when nobody says (the dispatcher passes
# its `concurrency`, so that a full window of sends never waits for a connection).
DEFAULT_CONNECTIONS = 50
# Failures that happen before a single byte of the request can have been processed.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)


@dataclass(frozen=True)
class Delivery:
    """One message, rendered and addressed. `key` is the outbox idempotency key."""

    outbox_id: int
    key: str
    channel: str
    to: str  # a phone number, a device token, or the webhook URL
    text: str = ""
    title: str | None = None
    body: Any = None  # the webhook's JSON body
    labels: Mapping[str, str] = field(default_factory=dict)  # journey and step, for providers that carry metadata

    @property
    def content(self) -> str:
        """What the message says, as one string: kept on its outbox row (`journeyflow deliveries`)
        and logged by the log provider, so that both show the same thing. A push's title comes
        first; a webhook says its JSON body."""
        if self.channel == "webhook":
            return json.dumps(self.body, ensure_ascii=False, sort_keys=True)
        return f"{self.title} | {self.text}" if self.title else self.text


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str | None = None
    # What the remote system answered, for a `call webhook ... as name` step that waits for it.
    reply: Mapping[str, Any] | None = None


class Provider(Protocol):
    name: str
    # True when the remote side deduplicates a repeat under the same key, so sending again after
    # a timeout cannot reach the customer twice.
    idempotent: bool

    async def send(self, delivery: Delivery) -> Receipt: ...

    async def aclose(self) -> None: ...


class BearerToken:
    """A token given in the settings, or read from a file that a sidecar refreshes (OAuth access
    tokens and APNs provider tokens expire within the hour); the file is re-read when it changes."""

    def __init__(self, section: Section, name: str) -> None:
        self.secret: Secret | None = section.secret(name, None)
        file = section.text(f"{name}_file", None)
        self.file = Path(file) if file else None
        if self.secret is None and self.file is None:
            raise SettingsInvalid(f"{section.key(name)}: is required (or {section.key(name + '_file')})")
        self._cached: tuple[float, str] | None = None

    def value(self) -> str:
        if self.file is None:
            assert self.secret is not None
            return self.secret.reveal()
        try:
            mtime = self.file.stat().st_mtime
            if self._cached is None or self._cached[0] != mtime:
                self._cached = (mtime, self.file.read_text(encoding="utf-8").strip())
        except OSError as error:
            raise RetryableFailure(f"cannot read the token file {self.file}: {error.strerror}") from error
        return self._cached[1]


class Slots:
    """`size` HTTP transports of one keep-alive connection each, each lent to one request at a time.

    Why not one `httpx.AsyncClient` whose pool is sized to the concurrency: httpcore's pool
    (1.0) rescans every connection on every request event, and it hands an idle connection to a
    second queued request before the first has marked it busy, so one of them fails with
    `ConnectionNotAvailable` and starts over (counted: one retry per request at 8 connections,
    five at 50). Side by side on the 2-core machine against benchmarks/dispatch.py's 20 ms
    loopback provider, 200 in flight: one pool of 200 made 77-96 requests/s at 4-6 ms of CPU
    each, pools of 8 used in turn 250-550/s at 1.4 ms, a connection per slot 630-690/s at
    0.8-0.9 ms (the benchmark prints the one-pool figure beside the dispatcher in every run). A
    slot never races and costs O(1) to find. Last in, first out, so that a small load keeps
    reusing the same warm connections and the rest stay unopened."""

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


class HttpProvider:
    """Base for providers that make one HTTP request per message.

    Requests go straight to httpx's transport (`httpx.Request` in, `httpx.Response` out, with
    httpx's own exceptions), not through `AsyncClient`: the client's layer (URL and header
    merging, cookie extraction, auth and redirect flows, event hooks) costs CPU on every send
    (`build_request` and `extract_cookies` alone were 13% of the send path under cProfile), and
    a provider needs none of it: no cookies, no redirects (`follow_redirects` was off), and auth
    is a header it sets itself."""

    name = "http"
    idempotent = False

    def __init__(self, timeout: float, clock: Clock, http2: bool = False,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        self.clock = clock
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        tls = httpx.create_ssl_context()  # loading the CA bundle takes 60 ms: once, not per connection
        self.slots = Slots(connections, lambda: httpx.AsyncHTTPTransport(verify=tls, http2=http2, limits=limits))
        self._extensions = {"timeout": httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)).as_dict()}

    async def aclose(self) -> None:
        await self.slots.aclose()

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      content: bytes | None = None, json: Any = None, data: Mapping[str, str] | None = None
                      ) -> httpx.Response:
        """The response, read in full, if it is a success; otherwise the `DeliveryError` it amounts to."""
        request = httpx.Request(method, url, headers={"User-Agent": USER_AGENT, **(headers or {})}, content=content,
                                json=json, data=data, extensions=self._extensions)
        transport = await self.slots.take()
        try:
            response = await transport.handle_async_request(request)
            try:
                await response.aread()  # the connection goes back to its slot's pool once read
            except BaseException:
                await response.aclose()
                raise
        except NOT_SENT as error:
            raise RetryableFailure(f"{self.name}: could not connect: {_describe(error)}") from error
        except httpx.TransportError as error:
            if self.idempotent:
                raise RetryableFailure(f"{self.name}: {_describe(error)} after sending; retried under the same key"
                                       ) from error
            raise UncertainOutcome(f"{self.name}: {_describe(error)} after the request was sent: it may have been "
                                   "delivered, and this provider cannot deduplicate a retry") from error
        finally:
            self.slots.give(transport)
        response.request = request
        if response.is_success:
            return response
        raise self.failure(response)

    def failure(self, response: httpx.Response) -> PermanentFailure | RetryableFailure:
        """What an unsuccessful response means; providers refine it with their error codes."""
        status = response.status_code
        detail = f"{self.name}: HTTP {status}: {self.detail(response)}"
        if status == 429 or status == 408 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
            return RetryableFailure(detail, retry_after)
        if status == 401:  # credentials expire and get fixed; the messages should wait, not be lost
            return RetryableFailure(detail + " (authentication failed: check the credentials)")
        return PermanentFailure(detail)

    def detail(self, response: httpx.Response) -> str:
        """The provider's own words about an error, shortened."""
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return response.text[:MAX_DETAIL_CHARS] or response.reason_phrase
        return json.dumps(data, ensure_ascii=False)[:MAX_DETAIL_CHARS]


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
