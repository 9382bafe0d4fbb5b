"""Event intake for producers: the Segment spec's `track`, `identify`, `alias`, `group`, `page`,
`screen` and `batch`.

Fields are Segment's camelCase and answers are what Segment's own API gives (200 with a JSON
body), so a pipeline or an official SDK (Segment's, RudderStack's) can point here unchanged.
Bodies may be gzip or deflate encoded, as the SDKs send them; the size limits apply to the
decoded body.

A 200 means the events are committed (through the group-commit queue); a repeated `messageId`
is dropped, so a producer that is unsure may resend. A batch keeps its good messages: the bad
ones are named by index in the answer (`rejected`), and only a batch with no good message at
all is refused, since an SDK that gets an error drops the whole batch it sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.messages import IDENTITY_TRAITS, MESSAGE_TYPES, Message, MessageInvalid, parse_message

from .. import bodies
from ..problems import BadRequest, PayloadTooLarge
from ..services import services
from ._guard import authorized

# Text that ends up in indexed columns; PostgreSQL refuses NUL characters in text.
_TEXT_FIELDS = {"messageId": "message_id", "userId": "user_id", "anonymousId": "anonymous_id",
                "event": "event", "previousId": "previous_id", "groupId": "group_id"}
# JSON text can only carry a NUL as this escape (a raw control character is invalid JSON), so a
# body without it needs no NUL check field by field.
_NUL_ESCAPE = b"\\u0000"
_ACCEPTED_ONE = b'{"success":true,"accepted":1}'  # built once: the hot path's answer


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


async def _body(request: Request, limit: int) -> tuple[bodies.Parsed, bool]:
    """The request's JSON object, decoded and parsed, and whether it may hold a NUL."""
    _, body = await authorized(request, "write", limit)
    bodies.check_json_type(request)
    body = bodies.decoded(request, body, limit)
    parsed = bodies.parse(body)
    if not isinstance(parsed.value, dict):
        raise BadRequest("the body must be a JSON object", {"body": "must be an object"})
    return parsed, _NUL_ESCAPE in body


async def _single(request: Request, kind: str) -> Response:
    svc = services(request)
    parsed, nul_possible = await _body(request, svc.settings.max_message_bytes)
    problems = bodies.problems_in(parsed.value) if parsed.suspect else {}
    if problems:
        raise BadRequest(f"the {kind} message holds values that cannot be stored", problems)
    try:
        message = parse(parsed.value, kind, svc.settings.clock.now(), nul_possible)
    except MessageInvalid as error:
        raise BadRequest(f"the {kind} message is invalid", _fields("", error.problems)) from None
    await svc.queue.submit([message])
    return Response(_ACCEPTED_ONE, media_type="application/json")


def _endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await _single(request, kind)

    endpoint.__name__ = kind  # the route's name, as `url_path_for` and the OpenAPI test see it
    return endpoint


async def batch(request: Request) -> Response:
    """Several messages in one call. Top-level `context` applies to messages without one."""
    svc = services(request)
    parsed, nul_possible = await _body(request, svc.settings.max_batch_bytes)
    raw: dict[str, Any] = parsed.value
    items = raw.get("batch")
    if not isinstance(items, list) or not items:
        raise BadRequest("batch must be a non-empty array of messages", {"batch": "must be a non-empty array"})
    if len(items) > svc.settings.max_batch_messages:
        raise PayloadTooLarge(f"the batch holds {len(items)} messages; at most {svc.settings.max_batch_messages}")
    context = raw.get("context")
    if context is not None and not isinstance(context, dict):
        raise BadRequest("the batch's context must be an object", {"context": "must be an object"})
    problems = bodies.problems_in(context, "context") if parsed.suspect and context else {}
    if problems:  # it would be copied into every message that has none: each would be refused
        raise BadRequest("the batch's context holds values that cannot be stored", problems)
    now = svc.settings.clock.now()
    messages: list[Message] = []
    rejected: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        problems = bodies.problems_in(item, f"batch[{i}]") if parsed.suspect else {}
        if not problems:
            if isinstance(item, dict) and context is not None and "context" not in item:
                item = {**item, "context": context}
            try:
                messages.append(parse(item, None, now, nul_possible))
                continue
            except MessageInvalid as error:
                problems = _fields(f"batch[{i}]", error.problems)
        rejected.append({"index": i, "errors": [{"field": k, "detail": v} for k, v in problems.items()]})
    if not messages:
        raise BadRequest(f"every message of the batch is invalid ({len(rejected)})",
                         {e["field"]: e["detail"] for r in rejected for e in r["errors"]})
    await svc.queue.submit(messages)
    answer: dict[str, Any] = {"success": True, "accepted": len(messages)}
    if rejected:
        answer["rejected"] = rejected
    return JSONResponse(answer)


def _fields(prefix: str, problems: dict[str, str]) -> dict[str, str]:
    def name(field: str) -> str:
        if not prefix:
            return field or "body"
        return f"{prefix}.{field}" if field else prefix

    return {name(field): detail for field, detail in problems.items()}


routes = [
    *(Route(f"/v1/{kind}", _endpoint(kind), methods=["POST"]) for kind in MESSAGE_TYPES),
    Route("/v1/batch", batch, methods=["POST"]),
]
