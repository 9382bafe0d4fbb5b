"""The coupon pools page: every pool with its free codes and how many codes one person may hold,
a form to create a pool, and one per pool to change that setting.

Marketers choose here what `issue coupon` does for someone who already has a code of the pool:
give the same code again (the default: one code per person) or a new one every time, and stock
a pool from a CSV file. The upload goes through the very functions the API's
`POST /v1/coupon-pools/{name}/codes` uses (`storage.coupons.checked_upload`, `lines`,
`import_csv`): the same format, checked line by line, in one transaction, so a bad line adds
nothing and its number is in the message. The file is spooled by the form parser (on disk when
large), never held in memory. Plain forms with the session's CSRF token; each change redirects
back to the page (303), so a reload never sends it twice.
"""

from __future__ import annotations

from typing import IO
from urllib.parse import quote, urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from api.routes.coupons import POOL_NAME
from api.services import Services, services
from storage import coupons
from storage.tables import CODES_PER_USER

from .sessions import login_required
from .templating import render

PAGE = "/builder/pools"
FORMAT = ("A codes file is a CSV whose first line is “code” (or “code,expires_at”), then one code a line, "
          "optionally with the time it expires: LENS-7Q2K,2026-12-31T23:59:59+08:00.")
# How the choice reads on the page, in the marketer's words.
CHOICES: dict[coupons.CodesPerUser, str] = {
    "one": "One (a person who already has a code gets the same one again)",
    "unlimited": "A new code every time",
}
assert tuple(CHOICES) == CODES_PER_USER


class Refused(Exception):
    """A change the page cannot make; the message says why, in the marketer's words."""


def _listed(svc: Services) -> list[coupons.Pool]:
    with svc.db.connect() as conn:
        return coupons.all_pools(conn, svc.settings.clock.now())


def free_codes(svc: Services) -> dict[str, int]:
    """Every pool's free codes, by name: what the coupon step's pool list shows."""
    return {pool.name: pool.stock.available for pool in _listed(svc)}


def _create(svc: Services, name: str, codes_per_user: coupons.CodesPerUser) -> None:
    with svc.writing(), svc.db.begin() as conn:
        try:
            coupons.create_pool(conn, name, svc.settings.clock.now(), codes_per_user)
        except coupons.PoolExists:
            raise Refused(f"There is already a pool named {name}.") from None


def _change(svc: Services, name: str, codes_per_user: coupons.CodesPerUser) -> None:
    with svc.writing(), svc.db.begin() as conn:
        try:
            coupons.set_codes_per_user(conn, name, codes_per_user)
        except coupons.PoolNotFound:
            raise Refused(f"There is no pool named {name} any more: reload the page.") from None


def _stock(svc: Services, name: str, file: IO[bytes]) -> coupons.ImportResult:
    file.seek(0)
    with svc.writing(), svc.db.begin() as conn:
        try:
            return coupons.import_csv(conn, name, coupons.checked_upload(coupons.lines(file)))
        except coupons.PoolNotFound:
            raise Refused(f"There is no pool named {name} any more: reload the page.") from None
        except coupons.CodesInvalid as error:
            raise Refused(f"Nothing was added to {name}. In the file, {error}. {FORMAT}") from None


def result_line(name: str, added: int, skipped: int) -> str:
    """What an upload did, in one line: the codes added and the duplicates left out."""
    codes = "code" if added == 1 else "codes"
    line = f"Added {added:,} {codes} to {name}"
    if skipped:
        line += f"; {skipped:,} already in the pool (or twice in the file) {'was' if skipped == 1 else 'were'} skipped"
    return line + "."


def _choice(raw: object) -> coupons.CodesPerUser:
    """The form's `codes_per_user`; anything else is refused (the page only offers the two)."""
    for value in CHOICES:
        if raw == value:
            return value
    raise Refused("Choose how many codes one person may get: one, or a new code every time.")


def _pool_name(raw: object) -> str:
    name = str(raw or "").strip()
    if not POOL_NAME.fullmatch(name):
        raise Refused("A pool name is up to 100 letters, digits, _ . and -, starting with a letter or digit "
                      "(LENS_TRIAL).")
    return name


async def _page(request: Request, error: str | None, status_code: int = 200,
                values: dict[str, str] | None = None, done: str | None = None) -> Response:
    svc = services(request)
    listed = await svc.call(_listed, svc)
    return render(request, "pools.html", {"pools": listed, "choices": CHOICES, "error": error, "done": done,
                                          "format": FORMAT, "max_mib": svc.settings.max_csv_bytes // 2**20,
                                          "values": values or {"name": "", "codes_per_user": "one"}},
                  status_code=status_code)


def _done(query: dict[str, str]) -> str | None:
    """The result line of the upload that redirected here, from its query string."""
    try:
        return result_line(_pool_name(query["stocked"]), int(query["added"]), int(query["skipped"]))
    except (KeyError, ValueError, Refused):
        return None


@login_required
async def page(request: Request) -> Response:
    """The page; `?name=` fills the new pool's name (the coupon step's link for a missing pool)."""
    query = dict(request.query_params)
    name = query.get("name", "")
    values = {"name": name if POOL_NAME.fullmatch(name) else "", "codes_per_user": "one"}
    return await _page(request, None, values=values, done=_done(query))


@login_required
async def create(request: Request) -> Response:
    form = await request.form()
    values = {"name": str(form.get("name", "")), "codes_per_user": str(form.get("codes_per_user", ""))}
    svc = services(request)
    try:
        name, codes_per_user = _pool_name(form.get("name")), _choice(form.get("codes_per_user"))
        await svc.call(_create, svc, name, codes_per_user)
    except Refused as refused:
        return await _page(request, str(refused), 422, values)
    return RedirectResponse(f"{PAGE}#pool-{quote(name)}", status_code=303)


@login_required
async def change(request: Request) -> Response:
    form = await request.form()
    name = str(request.path_params["name"])
    svc = services(request)
    try:
        await svc.call(_change, svc, _pool_name(name), _choice(form.get("codes_per_user")))
    except Refused as refused:
        return await _page(request, str(refused), 422)
    return RedirectResponse(f"{PAGE}#pool-{quote(name)}", status_code=303)


async def upload(request: Request) -> Response:
    """Stock a pool from the form's file. The parsed form (its spooled file) is closed whatever
    the answer, a refused token included: the guard reads the form before this view runs."""
    try:
        return await _upload(request)
    finally:
        await request.close()


@login_required
async def _upload(request: Request) -> Response:
    name = str(request.path_params["name"])
    svc = services(request)
    file = (await request.form(max_files=1)).get("codes")
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            raise Refused("Choose a CSV file of codes to add.")
        if file.size is not None and file.size > svc.settings.max_csv_bytes:
            raise Refused(f"The file is larger than {svc.settings.max_csv_bytes // 2**20} MiB: split it.")
        result = await svc.call(_stock, svc, _pool_name(name), file.file)
    except Refused as refused:
        return await _page(request, str(refused), 422)
    query = urlencode({"stocked": name, "added": result.added, "skipped": result.duplicates})
    return RedirectResponse(f"{PAGE}?{query}#pool-{quote(name)}", status_code=303)


ROUTES: list[BaseRoute] = [  # relative to /builder
    Route("/pools", page, methods=["GET"]),
    Route("/pools", create, methods=["POST"]),
    Route("/pools/{name}/codes-per-user", change, methods=["POST"]),
    Route("/pools/{name}/codes", upload, methods=["POST"]),
]
