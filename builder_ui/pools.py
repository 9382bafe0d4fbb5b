"""The coupon pools page: every pool with its free codes and how many codes one person may hold,
a form to create a pool, and one per pool to change that setting.

Marketers choose here what `issue coupon` does for someone who already has a code of the pool:
give the same code again (the default: one code per person) or a new one every time. Codes
are stocked over the API (`POST /v1/coupon-pools/{name}/codes`), not here: an upload of a
million codes is a job for a script, not a browser form. Plain forms with the session's CSRF
token; each change redirects back to the page (303), so a reload never sends it twice.
"""

from __future__ import annotations

from urllib.parse import quote

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
                values: dict[str, str] | None = None) -> Response:
    svc = services(request)
    listed = await svc.call(_listed, svc)
    return render(request, "pools.html", {"pools": listed, "choices": CHOICES, "error": error,
                                          "values": values or {"name": "", "codes_per_user": "one"}},
                  status_code=status_code)


@login_required
async def page(request: Request) -> Response:
    return await _page(request, None)


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


ROUTES: list[BaseRoute] = [  # relative to /builder
    Route("/pools", page, methods=["GET"]),
    Route("/pools", create, methods=["POST"]),
    Route("/pools/{name}/codes-per-user", change, methods=["POST"]),
]
