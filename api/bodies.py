"""Reading request bodies without trusting their size.

A body is refused with 413 as soon as it is known to be too large: from its Content-Length
before a byte is read, or, for a chunked body, the moment the bytes counted while streaming
pass the limit. Nothing larger than the limit is ever held in memory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from .problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json", "text/plain")  # some Segment-compatible senders say text/plain


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
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted here")
        yield chunk


async def read_limited(request: Request, limit: int) -> bytes:
    return b"".join([chunk async for chunk in limited_chunks(request, limit)])


def check_json_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() not in JSON_TYPES:
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
