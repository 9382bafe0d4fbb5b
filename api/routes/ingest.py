"""Event intake for producers: Segment's `track`, `identify`, `alias` and `batch`.

Fields are Segment's camelCase, so a pipeline's webhook destination can point here unchanged.
A 202 means the events are committed (through the group-commit queue); a repeated
`messageId` is dropped, so a producer that is unsure may resend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.messages import IDENTITY_TRAITS, Message, MessageInvalid, parse_message

from ..bodies import check_json_type, json_object
from ..problems import BadRequest, PayloadTooLarge
from ..services import services
from ._guard import authorized

# Text that ends up in indexed columns; PostgreSQL refuses NUL characters in text.
_TEXT_FIELDS = {"messageId": "message_id", "userId": "user_id", "anonymousId": "anonymous_id",
                "event": "event", "previousId": "previous_id"}
# JSON text can only carry a NUL as this escape (a raw control character is invalid JSON), so a
# body without it needs no NUL check field by field.
_NUL_ESCAPE = b"\\u0000"
_ACCEPTED_ONE = b'{"accepted":1}'  # what JSONResponse({"accepted": 1}) renders, built once


def parse(raw: Any, kind: str | None, now: datetime, nul_possible: bool = True) -> Message:
    """One message, checked by the engine's parser and, if its body may hold a NUL
    (`nul_possible`), for what storage cannot hold."""
    message = parse_message(raw, now, kind)
    if not nul_possible:
        return message
    problems = {name: "must not contain NUL characters" for name, attr in _TEXT_FIELDS.items()
                if "\x00" in (getattr(message, attr) or "")}
    problems |= {f"traits.{t}": "must not contain NUL characters" for t in IDENTITY_TRAITS
                 if "\x00" in str(message.traits.get(t) or "")}
    if problems:
        raise MessageInvalid(problems)
    return message


async def _single(request: Request, kind: str) -> Response:
    svc = services(request)
    _, body = await authorized(request, "write", svc.settings.max_message_bytes)
    check_json_type(request)
    raw = json_object(body)
    try:
        message = parse(raw, kind, svc.settings.clock.now(), _NUL_ESCAPE in body)
    except MessageInvalid as error:
        raise BadRequest(f"the {kind} message is invalid", _fields("", error)) from None
    await svc.queue.submit([message])
    return Response(_ACCEPTED_ONE, status_code=202, media_type="application/json")


async def track(request: Request) -> Response:
    return await _single(request, "track")


async def identify(request: Request) -> Response:
    return await _single(request, "identify")


async def alias(request: Request) -> Response:
    return await _single(request, "alias")


async def batch(request: Request) -> Response:
    """Several messages in one call, all or none: one bad message refuses the batch and every
    problem is named (`batch[3].userId`). Top-level `context` applies to messages without one."""
    svc = services(request)
    _, body = await authorized(request, "write", svc.settings.max_batch_bytes)
    check_json_type(request)
    raw = json_object(body)
    items = raw.get("batch")
    if not isinstance(items, list) or not items:
        raise BadRequest("batch must be a non-empty array of messages", {"batch": "must be a non-empty array"})
    if len(items) > svc.settings.max_batch_messages:
        raise PayloadTooLarge(f"the batch holds {len(items)} messages; at most {svc.settings.max_batch_messages}")
    context = raw.get("context")
    now = svc.settings.clock.now()
    nul_possible = _NUL_ESCAPE in body
    messages: list[Message] = []
    problems: dict[str, str] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(context, dict) and "context" not in item:
            item = {**item, "context": context}
        try:
            messages.append(parse(item, None, now, nul_possible))
        except MessageInvalid as error:
            problems |= _fields(f"batch[{i}]", error)
    if problems:
        raise BadRequest(f"{len({k.split('.')[0] for k in problems})} message(s) of the batch are invalid", problems)
    await svc.queue.submit(messages)
    return JSONResponse({"accepted": len(messages)}, status_code=202)


def _fields(prefix: str, error: MessageInvalid) -> dict[str, str]:
    def name(field: str) -> str:
        if not prefix:
            return field or "body"
        return f"{prefix}.{field}" if field else prefix

    return {name(field): detail for field, detail in error.problems.items()}


routes = [
    Route("/v1/track", track, methods=["POST"]),
    Route("/v1/identify", identify, methods=["POST"]),
    Route("/v1/alias", alias, methods=["POST"]),
    Route("/v1/batch", batch, methods=["POST"]),
]
