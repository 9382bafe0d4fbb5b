"""Reading request bodies without trusting their size.

A body is refused with 413 as soon as it is known to be too large: from its Content-Length
before a byte is read, or, for a chunked body, the moment the bytes counted while streaming
pass the limit. Nothing larger than the limit is ever held in memory.

A client that goes away before its body is complete gets a 400 that no one reads: Starlette's
`ClientDisconnect` would reach uvicorn as an unhandled error and log a traceback for what is
an ordinary event (a load generator stopping, a producer timing out).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json", "text/plain")  # some Segment-compatible senders say text/plain
_GONE = "the client went away before the body was complete"


def declared_length(request: Request, limit: int) -> None:
    """Refuse a body whose declared length is over `limit`, before reading it."""
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise BadRequest("Content-Length is not a number", {"Content-Length": "must be an integer"}) from None
    if length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; at most {limit} are accepted here")


async def limited_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, refusing it once more than `limit` bytes have come."""
    declared_length(request, limit)
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted here")
            yield chunk
    except ClientDisconnect:
        raise BadRequest(_GONE, {"body": "incomplete"}) from None


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes. It takes the ASGI messages itself rather than
    going through `limited_chunks`: on the event-intake path, which reads one small body per
    request thousands of times a second, two async generators per request (Starlette's stream
    and ours, each registered with the event loop on first use) were a visible share of it.
    The body is consumed: `request.stream()` cannot be read again afterwards."""
    declared_length(request, limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise BadRequest(_GONE, {"body": "incomplete"})
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted here")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_json_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None or content_type == "application/json":  # what nearly every sender says
        return
    if content_type.split(";")[0].strip().lower() not in JSON_TYPES:
        raise UnsupportedMediaType(f"send JSON (application/json), not {content_type}")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest("the body is not valid JSON", {"body": str(error)}) from None


def json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", {"body": "must be an object"})
    return data
