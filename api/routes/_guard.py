"""Authentication and body reading in the order that costs least: a request with no
credentials is refused before its body is read, a bearer or Basic key is checked before it,
and a signed request is read (within its size limit) and then verified against its bytes."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from storage.keys import ApiKey, KeyKind

from .. import auth
from ..bodies import check_json_type, json_object, read_limited
from ..problems import BadRequest, NotFound, Unauthorized
from ..services import services

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MAX_ID = 2**31 - 1  # ids and version numbers are 32-bit on PostgreSQL
MAX_BIG_ID = 2**63 - 1


async def authorized(request: Request, need: KeyKind, limit: int | None = None) -> tuple[ApiKey, bytes]:
    """The caller's key (allowed `need`) and the body (at most `limit` bytes; not read at all
    when `limit` is None, unless the request is signed, since a signature covers the body)."""
    svc = services(request)
    header = request.headers.get("authorization")
    remembered = svc.keys.by_header(header) if header is not None else None
    if remembered is not None:  # the hot path: a producer sending the same valid key again
        return auth.check_kind(remembered, need), (await read_limited(request, limit) if limit is not None else b"")
    found = auth.presented(request)
    if found.secret is not None:
        known, key = svc.keys.cached(found.secret, header)
        if not known:
            key = await svc.call(svc.keys.by_secret, found.secret, header)
        checked = auth.verdict(key, need)
        return checked, (await read_limited(request, limit) if limit is not None else b"")
    assert found.signature is not None
    body = await read_limited(request, limit if limit is not None else svc.settings.max_management_bytes)
    now = svc.settings.clock.now().timestamp()
    checked = await svc.call(auth.by_signature, svc.keys, found.signature, body, now, need)
    return checked, body


async def admin(request: Request) -> ApiKey:
    key, _ = await authorized(request, "admin")
    return key


async def admin_streaming(request: Request) -> ApiKey:
    """An admin key for a route that streams its body: signed requests cannot be verified
    before the body is read whole, so such routes take a bearer or Basic key only."""
    if auth.presented(request).secret is None:
        raise Unauthorized("this route streams its body: send the key as Bearer or Basic, not a signature")
    return await admin(request)


async def admin_json(request: Request) -> dict[str, Any]:
    """An admin request's JSON object body."""
    _, body = await authorized(request, "admin", services(request).settings.max_management_bytes)
    check_json_type(request)
    return json_object(body)


def slug_of(request: Request) -> str:
    slug = str(request.path_params["slug"])
    if not SLUG.match(slug):
        raise NotFound(f"no journey {slug!r}")
    return slug


def text_field(data: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} is required and must be a string", {name: "must be a string"})
    if "\x00" in value:
        raise BadRequest(f"{name} contains a NUL character", {name: "must not contain NUL characters"})
    return value


def int_param(request: Request, name: str, required: bool = True, maximum: int = MAX_ID) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        if required:
            raise BadRequest(f"the query parameter {name} is required", {name: "is required"})
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", {name: "must be an integer"}) from None
    if not 1 <= value <= maximum:
        raise BadRequest(f"{name} is out of range", {name: f"must be between 1 and {maximum}"})
    return value
