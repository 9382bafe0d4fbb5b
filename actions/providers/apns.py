"""Push through Apple's APNs provider API, over HTTP/2, with token-based authentication.

    POST {base_url}/3/device/<device token>            (HTTP/2)
    authorization: bearer <provider token: an ES256 JWT from the team's .p8 key>
    apns-topic: <bundle id>       apns-push-type: alert       apns-priority: 10
    apns-id: <UUID>               (ours: derived from the idempotency key)
    {"aps": {"alert": {"title": "...", "body": "..."}}, "journeyflow_key": "<run>/<step>"}
    -> 200, with the apns-id header
    -> 400 {"reason": "BadDeviceToken"}     410 {"reason": "Unregistered"}

The provider token is given in the settings or read from a file a sidecar refreshes (Apple
wants a new one every 20 to 60 minutes; signing it needs an ES256 signer this package does not
carry). APNs does not deduplicate by apns-id, so a timeout after sending is uncertain.
Rejections that a new token fixes (403 ExpiredProviderToken) are retried.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from engine.clock import Clock

from ..errors import PermanentFailure, RetryableFailure
from ..settings import ChannelSettings, Section
from .base import DEFAULT_CONNECTIONS, BearerToken, Delivery, HttpProvider, Receipt

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
APNS_ID_NAMESPACE = uuid.UUID("8d5b4c1e-3f1a-4b8e-9a55-6a2f0c7d9e10")  # apns-id = uuid5(namespace, key)
RETRYABLE_REASONS = frozenset({"ExpiredProviderToken", "InvalidProviderToken", "TooManyProviderTokenUpdates"})


@dataclass(frozen=True)
class ApnsConfig:
    topic: str
    token: BearerToken
    base_url: str = PRODUCTION_URL
    push_type: str = "alert"
    priority: int = 10

    @classmethod
    def read(cls, section: Section) -> ApnsConfig:
        default_url = SANDBOX_URL if section.flag("sandbox", False) else PRODUCTION_URL
        return cls(topic=section.text("topic"), token=BearerToken(section, "provider_token"),
                   base_url=section.text("base_url", default_url).rstrip("/"),
                   push_type=section.text("push_type", "alert"), priority=section.whole("priority", 10))


class ApnsPush(HttpProvider):
    name = "apns"
    idempotent = False

    def __init__(self, config: ApnsConfig, channel: ChannelSettings, clock: Clock,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        super().__init__(channel.timeout_seconds, clock, http2=True, connections=connections)
        self.config = config

    async def send(self, delivery: Delivery) -> Receipt:
        alert = {"body": delivery.text}
        if delivery.title:
            alert["title"] = delivery.title
        apns_id = str(uuid.uuid5(APNS_ID_NAMESPACE, delivery.key)).upper()
        headers = {"authorization": f"bearer {self.config.token.value()}", "apns-topic": self.config.topic,
                   "apns-push-type": self.config.push_type, "apns-priority": str(self.config.priority),
                   "apns-id": apns_id}
        payload = {"aps": {"alert": alert}, "journeyflow_key": delivery.key}
        response = await self.request("POST", f"{self.config.base_url}/3/device/{delivery.to}", json=payload,
                                      headers=headers)
        return Receipt(response.headers.get("apns-id", apns_id))

    def failure(self, response: httpx.Response) -> PermanentFailure | RetryableFailure:
        try:
            reason = str(response.json().get("reason", ""))
        except ValueError:
            reason = ""
        if reason in RETRYABLE_REASONS:
            return RetryableFailure(f"apns: HTTP {response.status_code}: {reason} (the provider token needs renewing)")
        return super().failure(response)
