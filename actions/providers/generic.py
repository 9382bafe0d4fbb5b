"""A generic HTTP provider, for SMS or push gateways that have no provider of their own.

Configured by a URL, headers and a body template:

    [sms.http]
    url = "https://sms.example.com/v2/send"
    headers = { Authorization = "Bearer ..." }          # every header value is a secret
    body = '{"mobile": {{ to | tojson }}, "content": {{ text | tojson }}}'
    idempotency_header = "X-Request-Id"                 # if the gateway deduplicates by one
    message_id_field = "id"                             # where the reply keeps its message id

The body is a Jinja template rendered in the same sandbox as messages, with `to`, `text`,
`title`, `key` and `channel` in scope (use `| tojson` inside JSON). The URL is checked by the
guard before each call. With an `idempotency_header` the key is sent in it and a timeout is
retried under the same key; without one it is an uncertain outcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from engine.clock import Clock

from ..errors import MessageInvalid, SettingsInvalid
from ..guard import Resolver, check_url, system_resolver
from ..settings import ChannelSettings, GuardSettings, Secret, Section
from ..templates import TemplateFailed, render
from .base import DEFAULT_CONNECTIONS, Delivery, HttpProvider, Receipt

JSON = "application/json"


@dataclass(frozen=True)
class GenericConfig:
    url: str
    body: str
    method: str = "POST"
    content_type: str = JSON
    headers: dict[str, Secret] = field(default_factory=dict)
    idempotency_header: str | None = None
    message_id_field: str | None = None

    @classmethod
    def read(cls, section: Section) -> GenericConfig:
        method = section.text("method", "POST").upper()
        if method not in ("POST", "PUT"):
            raise SettingsInvalid(f"{section.key('method')}: POST or PUT, not {method}")
        return cls(url=section.text("url"), body=section.text("body"), method=method,
                   content_type=section.text("content_type", JSON), headers=section.secrets("headers"),
                   idempotency_header=section.text("idempotency_header", None),
                   message_id_field=section.text("message_id_field", None))


class GenericHttp(HttpProvider):
    name = "http"

    def __init__(self, config: GenericConfig, channel: ChannelSettings, guard: GuardSettings, clock: Clock,
                 resolve: Resolver = system_resolver,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        super().__init__(channel.timeout_seconds, clock, connections=connections)
        self.config, self.guard, self.resolve = config, guard, resolve
        self.idempotent = config.idempotency_header is not None

    def body(self, delivery: Delivery) -> str:
        scope = {"to": delivery.to, "text": delivery.text, "title": delivery.title, "key": delivery.key,
                 "channel": delivery.channel}
        try:
            body = render(self.config.body, {}, None, scope)
        except TemplateFailed as error:
            raise MessageInvalid(f"http provider body: {error}") from error
        if self.config.content_type == JSON:
            try:
                json.loads(body)
            except json.JSONDecodeError as error:
                raise MessageInvalid(f"http provider body is not JSON ({error.msg}); "
                                     "use `| tojson` for values in the body template") from error
        return body

    async def send(self, delivery: Delivery) -> Receipt:
        await check_url(self.config.url, self.guard, self.resolve)
        headers = {name: value.reveal() for name, value in self.config.headers.items()}
        headers["Content-Type"] = self.config.content_type
        if self.config.idempotency_header:
            headers[self.config.idempotency_header] = delivery.key
        response = await self.request(self.config.method, self.config.url, content=self.body(delivery).encode(),
                                      headers=headers)
        if not self.config.message_id_field:
            return Receipt(None)
        try:
            found = response.json().get(self.config.message_id_field)
        except (ValueError, AttributeError):
            found = None
        return Receipt(str(found) if found is not None else None)
