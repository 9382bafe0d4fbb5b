"""Providers, one small module each, and `build_provider`, which picks one from the settings.

| channel | providers |
| --- | --- |
| sms | log (default), twilio, http |
| push | log (default), fcm, apns, http |
| webhook | log (default), http (signed POST) |
"""

from __future__ import annotations

from engine.clock import Clock

from ..errors import SettingsInvalid
from ..guard import Resolver, system_resolver
from ..settings import Settings
from .apns import ApnsConfig, ApnsPush
from .base import Delivery, Provider, Receipt
from .fcm import FcmConfig, FcmPush
from .generic import GenericConfig, GenericHttp
from .log import LogProvider
from .twilio import TwilioConfig, TwilioSms
from .webhook import WebhookConfig, WebhookProvider

PROVIDERS = {"sms": ("log", "twilio", "http"), "push": ("log", "fcm", "apns", "http"), "webhook": ("log", "http")}

__all__ = ["PROVIDERS", "Delivery", "Provider", "Receipt", "build_provider"]


def build_provider(channel: str, settings: Settings, clock: Clock, resolve: Resolver = system_resolver) -> Provider:
    """The provider the settings choose for `channel`, configured from its table."""
    chosen = settings.channel(channel)
    options = chosen.options
    connections = settings.dispatch.concurrency
    match (channel, chosen.provider):
        case (_, "log") if channel in PROVIDERS:
            return LogProvider(channel)
        case ("sms", "twilio"):
            return TwilioSms(TwilioConfig.read(options), chosen, clock, connections)
        case ("sms" | "push", "http"):
            return GenericHttp(GenericConfig.read(options), chosen, settings.guard, clock, resolve, connections)
        case ("push", "fcm"):
            return FcmPush(FcmConfig.read(options), chosen, clock, connections)
        case ("push", "apns"):
            return ApnsPush(ApnsConfig.read(options), chosen, clock, connections)
        case ("webhook", "http"):
            return WebhookProvider(WebhookConfig.read(options), chosen, settings.guard, clock, resolve,
                                   connections)
    choices = ", ".join(PROVIDERS.get(channel, ()))
    raise SettingsInvalid(f"{channel}.provider: {chosen.provider!r} is not a {channel} provider"
                          + (f" (choose from {choices})" if choices else ""))
