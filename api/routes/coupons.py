"""Coupon pools: create one, upload its codes as CSV (streamed), see its stock. Admin.

An upload is streamed: its bytes are counted against the limit as they arrive and spooled to a
temporary file (in memory while small); the file is then read row by row into
`storage.coupons.import_csv` on a worker thread, in one transaction, so a bad row adds nothing.
The whole upload is never held in memory.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import IO, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage import coupons

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


def _stock(svc: Services, name: str) -> dict[str, Any]:
    with svc.db.connect() as conn:
        try:
            return {"name": name, **dataclasses.asdict(coupons.stock(conn, name, svc.settings.clock.now()))}
        except coupons.PoolNotFound:
            raise NotFound(f"no coupon pool {name!r}") from None


def _create(svc: Services, name: str) -> dict[str, Any]:
    with svc.writing(), svc.db.begin() as conn:
        if coupons.pool_id(conn, name) is not None:
            raise Conflict(f"coupon pool {name!r} exists")
        try:
            coupons.create_pool(conn, name, svc.settings.clock.now())
        except coupons.PoolExists:
            raise Conflict(f"coupon pool {name!r} exists") from None
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


async def create_pool(request: Request) -> Response:
    data = await admin_json(request)
    name = text_field(data, "name")
    assert name is not None
    svc = services(request)
    name = _pool_name(name)
    return JSONResponse(await svc.call(_create, svc, name), status_code=201)


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
    Route("/v1/coupon-pools", create_pool, methods=["POST"]),
    Route("/v1/coupon-pools/{name}", pool_stock, methods=["GET"]),
    Route("/v1/coupon-pools/{name}/codes", upload_codes, methods=["POST"]),
]
