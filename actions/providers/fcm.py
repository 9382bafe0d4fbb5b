"""Push through Firebase Cloud Messaging's HTTP v1 API.

    POST {base_url}/v1/projects/{project_id}/messages:send
    Authorization: Bearer <OAuth 2 access token>
    {"message": {"token": "<device registration token>",
                 "notification": {"title": "...", "body": "..."},
                 "data": {"journeyflow_key": "<run>/<step>"}}}
    -> 200 {"name": "projects/<project>/messages/<id>"}
    -> 404 {"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}

The access token comes from the settings or from a file a sidecar keeps fresh (they expire
hourly; minting one from a service-account key needs an RS256 signer this package does not
carry). FCM takes no idempotency key: a timeout after sending is an uncertain outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.clock import Clock

from ..settings import ChannelSettings, Section
from .base import DEFAULT_CONNECTIONS, BearerToken, Delivery, HttpProvider, Receipt

DEFAULT_BASE_URL = "https://fcm.googleapis.com"


@dataclass(frozen=True)
class FcmConfig:
    project_id: str
    token: BearerToken
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def read(cls, section: Section) -> FcmConfig:
        return cls(project_id=section.text("project_id"), token=BearerToken(section, "access_token"),
                   base_url=section.text("base_url", DEFAULT_BASE_URL).rstrip("/"))


class FcmPush(HttpProvider):
    name = "fcm"
    idempotent = False

    def __init__(self, config: FcmConfig, channel: ChannelSettings, clock: Clock,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        super().__init__(channel.timeout_seconds, clock, connections=connections)
        self.config = config
        self.url = f"{config.base_url}/v1/projects/{config.project_id}/messages:send"

    async def send(self, delivery: Delivery) -> Receipt:
        notification = {"body": delivery.text}
        if delivery.title:
            notification["title"] = delivery.title
        message = {"token": delivery.to, "notification": notification,
                   "data": {"journeyflow_key": delivery.key, **delivery.labels}}
        headers = {"Authorization": f"Bearer {self.config.token.value()}"}
        response = await self.request("POST", self.url, json={"message": message}, headers=headers)
        name = response.json().get("name")
        return Receipt(str(name) if name else None)
