"""Coupon pools: create one, list them, upload its codes as CSV (streamed), see its stock,
change how many codes one person may hold (`codes_per_user`). Admin.

An upload is streamed: its bytes are counted against the limit as they arrive and spooled to a
temporary file (in memory while small); the file is then read row by row into
`storage.coupons.import_csv` on a worker thread, in one transaction, so a bad row adds nothing.
The whole upload is never held in memory.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import IO, Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage import coupons
from storage.tables import CODES_PER_USER

from ..bodies import limited_chunks
from ..problems import BadRequest, Conflict, NotFound, UnsupportedMediaType
from ..services import Services, services
from ._guard import admin, admin_json, admin_streaming, text_field

POOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


def _pool_name(raw: str) -> str:
    if not POOL_NAME.fullmatch(raw):
        raise BadRequest("a pool name is letters, digits, _ . and -", {"name": f"must match {POOL_NAME.pattern}"})
    return raw


def _codes_per_user(data: dict[str, Any], required: bool) -> coupons.CodesPerUser | None:
    """The body's `codes_per_user`, "one" or "unlimited"; None when absent and not required.
    Present, it must be one of those (null included is refused: the document says a string)."""
    if "codes_per_user" not in data and not required:
        return None
    value = data.get("codes_per_user")
    if value not in CODES_PER_USER:
        raise BadRequest(f"codes_per_user must be one of {', '.join(CODES_PER_USER)}",
                         {"codes_per_user": f"must be one of {', '.join(CODES_PER_USER)}"})
    return cast(coupons.CodesPerUser, value)


def _shown(pool: coupons.Pool) -> dict[str, Any]:
    return {"name": pool.name, "codes_per_user": pool.codes_per_user, **dataclasses.asdict(pool.stock)}


def _stock(svc: Services, name: str) -> dict[str, Any]:
    with svc.db.connect() as conn:
        try:
            return _shown(coupons.describe(conn, name, svc.settings.clock.now()))
        except coupons.PoolNotFound:
            raise NotFound(f"no coupon pool {name!r}") from None


def _list(svc: Services) -> dict[str, Any]:
    with svc.db.connect() as conn:
        return {"pools": [_shown(pool) for pool in coupons.all_pools(conn, svc.settings.clock.now())]}


def _create(svc: Services, name: str, codes_per_user: coupons.CodesPerUser) -> dict[str, Any]:
    with svc.writing(), svc.db.begin() as conn:
        if coupons.pool_id(conn, name) is not None:
            raise Conflict(f"coupon pool {name!r} exists")
        try:
            coupons.create_pool(conn, name, svc.settings.clock.now(), codes_per_user)
        except coupons.PoolExists:
            raise Conflict(f"coupon pool {name!r} exists") from None
    return _stock(svc, name)


def _change(svc: Services, name: str, codes_per_user: coupons.CodesPerUser) -> dict[str, Any]:
    with svc.writing(), svc.db.begin() as conn:
        try:
            coupons.set_codes_per_user(conn, name, codes_per_user)
        except coupons.PoolNotFound:
            raise NotFound(f"no coupon pool {name!r}") from None
    return _stock(svc, name)


def _import(svc: Services, name: str, spool: IO[bytes]) -> dict[str, Any]:
    spool.seek(0)
    with svc.writing(), svc.db.begin() as conn:
        try:
            result = coupons.import_csv(conn, name, coupons.checked_upload(coupons.lines(spool)))
        except coupons.PoolNotFound:
            raise NotFound(f"no coupon pool {name!r}") from None
        except coupons.CodesInvalid as error:
            raise BadRequest(f"the CSV cannot be imported: {error}", {"body": str(error)}) from None
    return {**_stock(svc, name), "added": result.added, "duplicates": result.duplicates}


async def pools(request: Request) -> Response:
    """GET lists the pools; POST creates one. (One route per path: see test_openapi.py.)"""
    return await (create_pool(request) if request.method == "POST" else list_pools(request))


async def list_pools(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(_list, svc))


async def create_pool(request: Request) -> Response:
    data = await admin_json(request)
    name = text_field(data, "name")
    assert name is not None
    svc = services(request)
    name = _pool_name(name)
    codes_per_user = _codes_per_user(data, required=False) or coupons.DEFAULT_CODES_PER_USER
    return JSONResponse(await svc.call(_create, svc, name, codes_per_user), status_code=201)


async def pool(request: Request) -> Response:
    """GET shows a pool's setting and stock; PATCH changes its setting."""
    return await (change_pool(request) if request.method == "PATCH" else pool_stock(request))


async def change_pool(request: Request) -> Response:
    data = await admin_json(request)
    svc = services(request)
    name = _pool_name(str(request.path_params["name"]))
    codes_per_user = _codes_per_user(data, required=True)
    assert codes_per_user is not None
    return JSONResponse(await svc.call(_change, svc, name, codes_per_user))


async def upload_codes(request: Request) -> Response:
    """`text/csv`: the header `code` (or `code,expires_at`), then a code a line, optionally
    followed by `,expires_at` (`storage.coupons.UPLOAD_PATTERN` says exactly what is taken)."""
    await admin_streaming(request)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in CSV_TYPES:
        raise UnsupportedMediaType("send the codes as text/csv, one a line")
    svc = services(request)
    name = _pool_name(str(request.path_params["name"]))
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool:
        async for chunk in limited_chunks(request, svc.settings.max_csv_bytes):
            if b"\x00" in chunk:
                raise BadRequest("the CSV holds NUL characters", {"body": "must be text"})
            spool.write(chunk)
        return JSONResponse(await svc.call(_import, svc, name, spool))


async def pool_stock(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(_stock, svc, _pool_name(str(request.path_params["name"]))))


routes = [
    Route("/v1/coupon-pools", pools, methods=["GET", "POST"]),
    Route("/v1/coupon-pools/{name}", pool, methods=["GET", "PATCH"]),
    Route("/v1/coupon-pools/{name}/codes", upload_codes, methods=["POST"]),
]
