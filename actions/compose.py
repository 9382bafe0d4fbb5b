"""Turn a claimed outbox row into a `Delivery`: templates rendered, recipient found.

Rendering happens here, at send time, not when the engine queued the row: a message deferred
by quiet hours uses the profile as it is when it goes out (a new first name, a coupon code
issued since). `user`, `event` (the event that started the run) and the run's named step
results are in scope, in the sandbox of `actions.templates`. Anything wrong with one message
(a template error, an unknown template, no phone number) raises `MessageInvalid` for that
message alone.
"""

from __future__ import annotations

from typing import Any

from .errors import MessageInvalid
from .outbox import Claimed
from .providers.base import Delivery
from .settings import Settings
from .templates import TemplateFailed, render

TEMPLATE_MARKERS = ("{{", "{%")


def compose(row: Claimed, settings: Settings) -> Delivery:
    labels = {"journey": row.journey or "", "step": row.step_id or ""}
    if row.channel == "webhook":
        url = _render(row, str(row.payload.get("url") or ""), "webhook URL")
        if not url:
            raise MessageInvalid("the webhook has no URL")
        return Delivery(row.id, row.key, row.channel, url, body=row.payload.get("body"), labels=labels)
    if row.channel not in ("sms", "push"):
        raise MessageInvalid(f"no provider sends {row.channel!r} rows")
    text, title = _content(row, settings)
    return Delivery(row.id, row.key, row.channel, _recipient(row, settings), text=text, title=title, labels=labels)


def _content(row: Claimed, settings: Settings) -> tuple[str, str | None]:
    name = row.payload.get("template")
    if name:
        template = settings.templates.get(str(name))
        if template is None:
            raise MessageInvalid(f"unknown template {name!r}: define [templates.{name}] in the actions settings "
                                 "(--actions-settings FILE)")
        text, title = template.text, template.title
    else:
        text, title = str(row.payload.get("text") or ""), row.payload.get("title")
    rendered = _render(row, text, "message")
    if not rendered.strip():
        raise MessageInvalid("the message is empty after rendering")
    return rendered, _render(row, str(title), "title") if title else None


def _render(row: Claimed, text: str, what: str) -> str:
    if not any(marker in text for marker in TEMPLATE_MARKERS):
        return text
    results: dict[str, Any] = dict(row.payload.get("results") or {})
    try:
        return render(text, row.user, row.event, results)
    except TemplateFailed as error:
        raise MessageInvalid(f"{what}: {error}") from error


def _recipient(row: Claimed, settings: Settings) -> str:
    trait = settings.channel(row.channel).recipient
    found = row.user.get(trait) or row.identities.get(trait)
    if not isinstance(found, str) or not found.strip():
        raise MessageInvalid(f"profile {row.profile_id} has no {trait}: nothing to send the {row.channel} to")
    return found.strip()
