"""Reading a body within its limit, straight from the ASGI messages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.requests import Request

from api.bodies import limited_chunks, read_limited
from api.problems import BadRequest, PayloadTooLarge


def request(messages: Sequence[dict[str, Any]], length: int | None = None) -> Request:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    headers = [(b"content-length", str(length).encode())] if length is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive)


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_chunks_are_joined() -> None:
    assert asyncio.run(read_limited(request([chunk(b'{"a":', True), chunk(b"1}", False)]), 10)) == b'{"a":1}'


def test_a_chunked_body_past_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_limited(request([chunk(b"x" * 6, True), chunk(b"x" * 6, False)]), 10))


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_limited(request([], length=11), 10))  # an empty queue: reading would fail


@pytest.mark.parametrize("reader", ["read_limited", "limited_chunks"])
def test_a_client_gone_mid_body_is_a_bad_request_not_a_server_error(reader: str) -> None:
    gone = request([chunk(b"{", True), {"type": "http.disconnect"}])

    async def read() -> None:
        if reader == "read_limited":
            await read_limited(gone, 10)
        else:
            async for _ in limited_chunks(gone, 10):
                pass

    with pytest.raises(BadRequest, match="went away"):
        asyncio.run(read())
