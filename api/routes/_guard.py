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
from ..problems import BadRequest, Unauthorized
from ..services import services

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
MAX_ID = 2**31 - 1  # ids and version numbers are 32-bit on PostgreSQL
MAX_BIG_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")


async def authorized(request: Request, need: KeyKind, limit: int | None = None) -> tuple[ApiKey, bytes]:
    """The caller's key (allowed `need`) and the body (at most `limit` bytes; not read at all
    when `limit` is None, unless the request is signed, since a signature covers the body)."""
    svc = services(request)
    header = auth.authorization(request)  # one at most: two would be ambiguous
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
    if not SLUG.fullmatch(slug):
        raise BadRequest("a journey slug is lower-case letters, digits, - and _",
                         {"slug": f"must match {SLUG.pattern}"})
    return slug


def path_id(request: Request, name: str, maximum: int = MAX_ID) -> int:
    """A path parameter that is an id or a number. (Starlette's `int` convertor would hand
    `int()` 5,000 digits, a ValueError deep in routing.)"""
    return _whole_number(str(request.path_params[name]), name, maximum)


def _whole_number(raw: str, name: str, maximum: int) -> int:
    """`raw` as an integer from 1 to `maximum` (what the column holds), or a 400 naming `name`.
    Digits only: int() also reads "1_000", " 7", "+7" and other scripts' digits ("٧")."""
    if _DIGITS.fullmatch(raw) and len(raw.lstrip("0")) <= len(str(maximum)) and 1 <= int(raw) <= maximum:
        return int(raw)
    raise BadRequest(f"{name} must be a whole number from 1 to {maximum}",
                     {name: f"must be an integer from 1 to {maximum}"})


def text_field(data: dict[str, Any], name: str, required: bool = True, max_length: int | None = None) -> str | None:
    """A string member of a JSON body. `max_length` is for text kept in an indexed column,
    whose entries PostgreSQL limits to about 2.7 kB."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} is required and must be a string", {name: "must be a string"})
    if "\x00" in value:
        raise BadRequest(f"{name} contains a NUL character", {name: "must not contain NUL characters"})
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"{name} is longer than {max_length} characters",
                         {name: f"must be at most {max_length} characters"})
    return value


def int_param(request: Request, name: str, required: bool = True, maximum: int = MAX_ID) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        if required:
            raise BadRequest(f"the query parameter {name} is required", {name: "is required"})
        return None
    return _whole_number(raw, name, maximum)

