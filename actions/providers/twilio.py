"""SMS through Twilio's Messages API (and the many gateways that copy its shape).

    POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
    Authorization: Basic AccountSid:AuthToken
    To=+8613800000000&From=+15005550006&Body=...        (or MessagingServiceSid=MG...)
    -> 201 {"sid": "SM...", "status": "queued", ...}
    -> 400 {"code": 21211, "message": "The 'To' number ... is not a valid phone number.", ...}

Twilio takes no idempotency key for sending, so a timeout after the request left is an
`UncertainOutcome`: the customer may already have the text, and we never send it blindly again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from engine.clock import Clock

from ..errors import SettingsInvalid
from ..settings import ChannelSettings, Secret, Section
from .base import DEFAULT_CONNECTIONS, Delivery, HttpProvider, Receipt

DEFAULT_BASE_URL = "https://api.twilio.com"


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: Secret
    sender: str | None = None  # `from`: a Twilio number or alphanumeric sender id
    messaging_service_sid: str | None = None  # or a Messaging Service, which picks the sender
    base_url: str = DEFAULT_BASE_URL
    status_callback: str | None = None

    @classmethod
    def read(cls, section: Section) -> TwilioConfig:
        config = cls(account_sid=section.text("account_sid"), auth_token=section.secret("auth_token"),
                     sender=section.text("from", None),
                     messaging_service_sid=section.text("messaging_service_sid", None),
                     base_url=section.text("base_url", DEFAULT_BASE_URL).rstrip("/"),
                     status_callback=section.text("status_callback", None))
        if not config.sender and not config.messaging_service_sid:
            raise SettingsInvalid(f"{section.key('from')}: give `from` or `messaging_service_sid`")
        return config


class TwilioSms(HttpProvider):
    name = "twilio"
    idempotent = False

    def __init__(self, config: TwilioConfig, channel: ChannelSettings, clock: Clock,
                 connections: int = DEFAULT_CONNECTIONS) -> None:
        super().__init__(channel.timeout_seconds, clock, connections=connections)
        self.config = config
        self.url = f"{config.base_url}/2010-04-01/Accounts/{config.account_sid}/Messages.json"

    async def send(self, delivery: Delivery) -> Receipt:
        form = {"To": delivery.to, "Body": delivery.text}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = self.config.sender or ""
        if self.config.status_callback:
            form["StatusCallback"] = self.config.status_callback
        response = await self.request("POST", self.url, data=form, headers={"Authorization": self._basic()})
        sid = response.json().get("sid") if response.content else None
        return Receipt(str(sid) if sid else None)

    def _basic(self) -> str:
        """HTTP Basic for the account, built per send: the token is kept only as a `Secret`, so
        that no attribute of the provider shows it (not even base64-encoded)."""
        pair = f"{self.config.account_sid}:{self.config.auth_token.reveal()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
