"""The `call webhook` action: POST the step's JSON body to its URL, signed.

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <run id>/<step id>
    Journeyflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>

The URL is checked by the guard first (marketers write it, profile data may fill it in). The
receiver verifies the signature with `actions.signing.verify`, refusing stale timestamps
(replays), and deduplicates by `Idempotency-Key`: that contract is what makes a timeout after
sending safe to retry, so webhooks are `idempotent` unless `idempotent_receivers = false`, in
which case such a timeout leaves the row uncertain. Each attempt is signed afresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from engine.clock import Clock

from ..guard import Resolver, check_url, system_resolver
from ..settings import ChannelSettings, GuardSettings, Secret, Section
from ..signing import SIGNATURE_HEADER, sign
from .base import DEFAULT_CONNECTIONS, Delivery, HttpProvider, Receipt

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class WebhookConfig:
    signing_secret: Secret
    idempotent_receivers: bool = True

    @classmethod
    def read(cls, section: Section) -> WebhookConfig:
        return cls(signing_secret=section.secret("signing_secret"),
                   idempotent_receivers=section.flag("idempotent_receivers", True))


def encode_body(body: object) -> bytes:
    """The exact bytes signed and sent: compact JSON, UTF-8, non-ASCII kept as is."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


MAX_REPLY_BYTES = 64 * 1024  # a reply is kept in the run's results: bounded


def reply_body(response: httpx.Response) -> Any:
    """The reply's JSON, for the step's named result; None when it is not JSON or too large."""
    if len(response.content) > MAX_REPLY_BYTES or "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None


class WebhookProvider(HttpProvider):
    name = "webhook"

    def __init__(self, config: WebhookConfig, channel: ChannelSettings, guard: GuardSettings, clock: Clock,
                 resolve: Resolver = system_resolver,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        super().__init__(channel.timeout_seconds, clock, connections=connections)
        self.config, self.guard, self.resolve = config, guard, resolve
        self.idempotent = config.idempotent_receivers

    async def send(self, delivery: Delivery) -> Receipt:
        await check_url(delivery.to, self.guard, self.resolve)
        body = encode_body(delivery.body)
        timestamp = int(self.clock.now().timestamp())
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: delivery.key,
                   SIGNATURE_HEADER: sign(self.config.signing_secret.reveal(), timestamp, body)}
        response = await self.request("POST", delivery.to, content=body, headers=headers)
        return Receipt(None, reply={"status": response.status_code, "body": reply_body(response)})
