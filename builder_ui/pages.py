"""The journey list (polled, so a publish elsewhere shows up live) and creating a journey."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.services import services

from . import drafts
from .sessions import login_required
from .templating import render

MAX_NAME_CHARS = 200


@login_required
async def journeys(request: Request) -> Response:
    svc = services(request)
    rows = await svc.call(drafts.overview, svc)
    name = "journey_rows.html" if request.headers.get("hx-request") == "true" else "journeys.html"
    return render(request, name, {"rows": rows, "error": None})


@login_required
async def create(request: Request) -> Response:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    svc = services(request)
    error = None
    if not name or len(name) > MAX_NAME_CHARS or "\n" in name:
        error = f"Give the journey a name of one line, up to {MAX_NAME_CHARS} characters."
    else:
        rows = await svc.call(drafts.overview, svc)
        same = next((row for row in rows if row.name.casefold() == name.casefold()), None)
        if same is not None and form.get("confirmed") != "yes":
            # Two journeys of one name read alike in every list and report: ask first.
            return render(request, "journeys.html", {"rows": rows, "error": None, "duplicate": same,
                                                     "name": name}, status_code=409)
        try:
            slug = await svc.call(drafts.create, svc, name)
        except drafts.Refused as refused:
            error = refused.detail
    if error is not None:
        rows = await svc.call(drafts.overview, svc)
        return render(request, "journeys.html", {"rows": rows, "error": error}, status_code=422)
    return RedirectResponse(f"/builder/journeys/{slug}", status_code=303)
