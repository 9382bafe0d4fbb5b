"""Journey management: create from text, read (text, graph, problems with line and column),
edit the draft, publish, pause, resume, archive, versions and their diff, and entering users
into an API-triggered journey. Admin keys only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dsl import JourneyError, compile_source, parse
from dsl import model as dm
from engine.messages import IDENTITY_TRAITS
from engine.runtime import JourneyNotFound, slugify
from storage import journeys as stored

from ..problems import BadRequest, Conflict, NotFound, Unprocessable
from ..services import Services, services
from ._guard import SLUG, admin, admin_json, int_param, slug_of, text_field

# What each management action may start from, and the status it leads to.
TRANSITIONS = {
    "pause": ({"live"}, "paused"),
    "resume": ({"paused"}, "live"),
    "archive": ({"draft", "live", "paused"}, "archived"),
}


def analyse(source: str) -> tuple[dict[str, Any] | None, str | None, list[dict[str, Any]]]:
    """(compiled graph, journey name, problems): the graph is None when there are problems."""
    try:
        compiled = compile_source(source)
    except JourneyError as error:
        try:
            name: str | None = parse(source).name
        except JourneyError:
            name = None
        return None, name, [{"line": d.line, "column": d.column, "message": d.message, "hint": d.hint}
                            for d in error.diagnostics]
    return compiled.to_dict(), compiled.name, []


def version_view(version: stored.Version, live_version_id: int | None) -> dict[str, Any]:
    graph, _, problems = analyse(version.source) if version.is_draft else (version.graph, None, [])
    return {"version": version.number, "id": version.id, "source": version.source, "graph": graph,
            "errors": problems, "valid": not problems, "draft": version.is_draft,
            "live": version.id == live_version_id, "created_at": version.created_at.isoformat(),
            "published_at": version.published_at.isoformat() if version.published_at else None}


def journey_view(conn: Connection, journey: stored.Journey) -> dict[str, Any]:
    draft = stored.draft(conn, journey.id)
    live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
    shown = draft or live
    return {"slug": journey.slug, "name": journey.name, "status": journey.status,
            "live_version": live.number if live else None, "draft_version": draft.number if draft else None,
            "version": version_view(shown, journey.live_version_id) if shown else None}


def _journey(conn: Connection, slug: str) -> stored.Journey:
    journey = stored.get(conn, slug)
    if journey is None:
        raise NotFound(f"no journey {slug!r}")
    return journey


# ---------------------------------------------------------------- blocking work, run on threads


def _list(svc: Services) -> list[dict[str, Any]]:
    with svc.db.connect() as conn:
        out = []
        for journey in stored.list_all(conn):
            draft = stored.draft(conn, journey.id)
            live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
            out.append({"slug": journey.slug, "name": journey.name, "status": journey.status,
                        "live_version": live.number if live else None,
                        "draft_version": draft.number if draft else None})
        return out


def _create(svc: Services, source: str, slug: str | None) -> dict[str, Any]:
    graph, name, problems = analyse(source)
    if slug is None:
        if name is None:
            raise Unprocessable("the text does not parse, so it names no journey: give a slug", problems)
        slug = slugify(name)
    with svc.writing(), svc.db.begin() as conn:
        created = stored.create(conn, slug, name or slug, source, graph or {}, svc.settings.clock.now())
        if created is None:
            raise Conflict(f"a journey {slug!r} exists; edit its draft instead")
        return journey_view(conn, _journey(conn, slug))


def _read(svc: Services, slug: str) -> dict[str, Any]:
    with svc.db.connect() as conn:
        return journey_view(conn, _journey(conn, slug))


def _save_draft(svc: Services, slug: str, source: str) -> dict[str, Any]:
    graph, name, _ = analyse(source)
    with svc.writing(), svc.db.begin() as conn:
        journey = _journey(conn, slug)
        if journey.status == "archived":
            raise Conflict(f"journey {slug!r} is archived")
        version = stored.save_draft(conn, journey, source, graph or {}, name, svc.settings.clock.now())
        return version_view(version, journey.live_version_id)


def _publish(svc: Services, slug: str) -> dict[str, Any]:
    with svc.lock:  # one publisher at a time, and none while the engine loop holds the runtime
        with svc.db.connect() as conn:
            journey = _journey(conn, slug)
            draft = stored.draft(conn, journey.id)
        if draft is None:
            raise Conflict(f"journey {slug!r} has no draft to publish")
        _, _, problems = analyse(draft.source)
        if problems:
            raise Unprocessable("the draft has problems; fix them before publishing", problems)
        version_id = svc.runtime.publish(draft.source, slug)
        with svc.db.begin() as conn:
            stored.absorb_draft(conn, draft, version_id)
            return journey_view(conn, _journey(conn, slug))


def _set_status(svc: Services, slug: str, action: str) -> dict[str, Any]:
    allowed, status = TRANSITIONS[action]
    with svc.lock:
        with svc.db.connect() as conn:
            journey = _journey(conn, slug)
        if journey.status not in allowed:
            raise Conflict(f"cannot {action} journey {slug!r}: it is {journey.status}")
        try:
            svc.runtime.set_status(slug, status)
        except JourneyNotFound:
            raise NotFound(f"no journey {slug!r}") from None
    return {"slug": slug, "status": status}


def _versions(svc: Services, slug: str) -> list[dict[str, Any]]:
    with svc.db.connect() as conn:
        journey = _journey(conn, slug)
        return [{"version": v.number, "id": v.id, "draft": v.is_draft, "live": v.id == journey.live_version_id,
                 "created_at": v.created_at.isoformat(),
                 "published_at": v.published_at.isoformat() if v.published_at else None}
                for v in stored.versions(conn, journey.id)]


def _version(svc: Services, slug: str, number: int) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = _journey(conn, slug)
        version = stored.version(conn, journey.id, number)
        if version is None:
            raise NotFound(f"journey {slug!r} has no version {number}")
        return version_view(version, journey.live_version_id)


def _diff(svc: Services, slug: str, older: int, newer: int) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = _journey(conn, slug)
        found = {n: stored.version(conn, journey.id, n) for n in (older, newer)}
    missing = sorted(n for n, v in found.items() if v is None)
    if missing:
        raise NotFound(f"journey {slug!r} has no version {missing[0]}")
    a, b = found[older], found[newer]
    assert a is not None and b is not None
    return {"from": older, "to": newer, "diff": stored.diff(a, b, slug)}


def _enter(svc: Services, slug: str, found: list[tuple[str, str]]) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = _journey(conn, slug)
        live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
    if journey.status != "live" or live is None:
        raise Conflict(f"journey {slug!r} is {journey.status}; only live journeys take entries")
    if not any(isinstance(t, dm.ApiTrigger) for t in compile_source(live.source).triggers):
        raise Conflict(f"journey {slug!r} has no `trigger api`, so users cannot be entered through the API")
    with svc.lock:
        try:
            entered = svc.runtime.enter(slug, found)
        except JourneyNotFound:
            raise Conflict(f"journey {slug!r} is not live") from None
    return {"slug": slug, "entered": entered}


# ---------------------------------------------------------------- handlers


async def list_journeys(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse({"journeys": await svc.call(_list, svc)})


async def create_journey(request: Request) -> Response:
    data = await admin_json(request)
    source = text_field(data, "source")
    slug = text_field(data, "slug", required=False)
    if slug is not None and not SLUG.match(slug):
        raise BadRequest("slug must be lower-case letters, digits, - and _",
                         {"slug": "must match ^[a-z0-9][a-z0-9_-]{0,99}$"})
    svc = services(request)
    return JSONResponse(await svc.call(_create, svc, source, slug), status_code=201)


async def read_journey(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(_read, svc, slug_of(request)))


async def update_draft(request: Request) -> Response:
    data = await admin_json(request)
    svc = services(request)
    return JSONResponse(await svc.call(_save_draft, svc, slug_of(request), text_field(data, "source")))


async def publish(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(_publish, svc, slug_of(request)))


def _status_action(action: str) -> Any:
    async def handler(request: Request) -> Response:
        await admin(request)
        svc = services(request)
        return JSONResponse(await svc.call(_set_status, svc, slug_of(request), action))

    handler.__name__ = f"{action}_journey"
    return handler


async def list_versions(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse({"versions": await svc.call(_versions, svc, slug_of(request))})


async def read_version(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    number = int(request.path_params["number"])
    if number > 2**31 - 1:
        raise NotFound("no such version")
    return JSONResponse(await svc.call(_version, svc, slug_of(request), number))


async def diff_versions(request: Request) -> Response:
    await admin(request)
    older, newer = int_param(request, "from"), int_param(request, "to")
    assert older is not None and newer is not None
    svc = services(request)
    return JSONResponse(await svc.call(_diff, svc, slug_of(request), older, newer))


async def enter_user(request: Request) -> Response:
    data = await admin_json(request)
    found: list[tuple[str, str]] = []
    for field, kind in (("userId", "user_id"), ("anonymousId", "anonymous_id")):
        value = text_field(data, field, required=False)
        if value:
            found.append((kind, value))
    extra = data.get("identities") or {}
    if not isinstance(extra, dict) or not all(
            k in IDENTITY_TRAITS and isinstance(v, str) and v and "\x00" not in v for k, v in extra.items()):
        raise BadRequest("identities must map identity kinds to strings",
                         {"identities": f"must map {', '.join(IDENTITY_TRAITS)} to non-empty strings"})
    found += [(str(k), v) for k, v in extra.items()]
    if not found:
        raise BadRequest("name the user: userId, anonymousId or identities",
                         {"userId": "userId, anonymousId or identities is required"})
    svc = services(request)
    return JSONResponse(await svc.call(_enter, svc, slug_of(request), found))


routes = [
    Route("/v1/journeys", list_journeys, methods=["GET"]),
    Route("/v1/journeys", create_journey, methods=["POST"]),
    Route("/v1/journeys/{slug}", read_journey, methods=["GET"]),
    Route("/v1/journeys/{slug}/draft", update_draft, methods=["PUT"]),
    Route("/v1/journeys/{slug}/publish", publish, methods=["POST"]),
    *[Route(f"/v1/journeys/{{slug}}/{action}", _status_action(action), methods=["POST"]) for action in TRANSITIONS],
    Route("/v1/journeys/{slug}/versions", list_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/versions/{number:int}", read_version, methods=["GET"]),
    Route("/v1/journeys/{slug}/diff", diff_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/entries", enter_user, methods=["POST"]),
]
