"""What every provider is given and gives back, and the HTTP plumbing they share.

A provider turns one `Delivery` (a message already rendered and addressed) into one request,
and either returns a `Receipt` or raises one of the `DeliveryError`s that tell the dispatcher
what to do next. The one judgement that needs care is a failure *after* the request left:
only a provider that the remote side deduplicates by our key (`idempotent`) may call that
retryable; for the others it is an `UncertainOutcome`.

`HttpProvider` sends over HTTP/1.1 through aiohttp, which takes far less CPU per request than
httpx, and over HTTP/2 (APNs) through httpx, because aiohttp has no HTTP/2. How each one
sends, and why, is in `transport`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from engine.clock import Clock

from ..backoff import parse_retry_after
from ..errors import PermanentFailure, RetryableFailure, SettingsInvalid, UncertainOutcome
from ..settings import Secret, Section
from .transport import AiohttpTransport, HttpxTransport, MaybeSent, NotSent, Slots, Transport

USER_AGENT = "Journeyflow-Dispatcher/0.1"
CONNECT_TIMEOUT_SECONDS = 5.0
MAX_DETAIL_CHARS = 300  # how much of an error response is kept in last_error
# How many requests a provider may have in flight at once when nobody says (the dispatcher passes
# its `concurrency`, so that a full window of sends never waits for a connection).
DEFAULT_CONNECTIONS = 50


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


class HttpProvider:
    """Base for providers that make one HTTP request per message.

    An HTTP/1.1 provider (all but APNs) sends through aiohttp, one `aiohttp.ClientSession` with
    a pool of `connections` keep-alive connections. An HTTP/2 provider (`http2=True`) sends
    through httpx, one transport per concurrency slot (`transport.Slots`), because aiohttp speaks
    no HTTP/2. Why aiohttp: it costs about 200 µs of CPU per request where httpx cost 700 µs,
    and at 700 µs one process cannot reach the dispatcher's 2,000 messages/s (figures in
    actions/providers/transport.py). Either way `request` gives back an `httpx.Response` read in
    full, and a request that fails means the same thing: `failure` and `detail` below, and
    every provider's own parsing, do not know which client sent it."""

    name = "http"
    idempotent = False

    def __init__(self, timeout: float, clock: Clock, http2: bool = False,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        self.clock = clock
        connect = min(timeout, CONNECT_TIMEOUT_SECONDS)
        tls = httpx.create_ssl_context()  # loading the CA bundle takes 60 ms: once, not per connection
        self.transport: Transport
        self.slots: Slots | None = None  # HTTP/2's httpx transports
        if http2:
            http2_transport = HttpxTransport(timeout, connect, connections, tls, http2=True)
            self.transport, self.slots = http2_transport, http2_transport.slots
        else:
            tls.set_alpn_protocols(["http/1.1"])  # as httpcore offers it for HTTP/1.1
            self.transport = AiohttpTransport(timeout, connect, connections, tls)

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      content: bytes | None = None, json: Any = None, data: Mapping[str, str] | None = None
                      ) -> httpx.Response:
        """The response, read in full, if it is a success; otherwise the `DeliveryError` it amounts to."""
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        try:
            response = await self.transport.send(method, url, sent, content, json, data)
        except NotSent as error:
            raise RetryableFailure(f"{self.name}: could not connect: {error}") from error.__cause__
        except MaybeSent as error:
            if self.idempotent:
                raise RetryableFailure(f"{self.name}: {error} after sending; retried under the same key"
                                       ) from error.__cause__
            raise UncertainOutcome(f"{self.name}: {error} after the request was sent: it may have been "
                                   "delivered, and this provider cannot deduplicate a retry") from error.__cause__
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

