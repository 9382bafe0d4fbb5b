"""Journey management: create from text, read (text, graph, problems with line and column),
edit the draft, publish, pause, resume, archive, versions and their diff, and entering users
into an API-triggered journey. Admin keys only; the work is `api.journey_service`'s."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.messages import IDENTITY_TRAITS

from .. import journey_service
from ..problems import BadRequest, NotFound
from ..services import services
from ._guard import SLUG, admin, admin_json, int_param, slug_of, text_field

# ---------------------------------------------------------------- handlers


async def list_journeys(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse({"journeys": await svc.call(journey_service.list_all, svc)})


async def create_journey(request: Request) -> Response:
    data = await admin_json(request)
    source = text_field(data, "source")
    slug = text_field(data, "slug", required=False)
    if slug is not None and not SLUG.match(slug):
        raise BadRequest("slug must be lower-case letters, digits, - and _",
                         {"slug": "must match ^[a-z0-9][a-z0-9_-]{0,99}$"})
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.create, svc, source, slug), status_code=201)


async def read_journey(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.read, svc, slug_of(request)))


async def update_draft(request: Request) -> Response:
    data = await admin_json(request)
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.save_draft, svc, slug_of(request), text_field(data, "source")))


async def publish(request: Request) -> Response:
    key = await admin(request)
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.publish, svc, slug_of(request), f"key:{key.name}"))


def _status_action(action: str) -> Any:
    async def handler(request: Request) -> Response:
        await admin(request)
        svc = services(request)
        return JSONResponse(await svc.call(journey_service.set_status, svc, slug_of(request), action))

    handler.__name__ = f"{action}_journey"
    return handler


async def list_versions(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse({"versions": await svc.call(journey_service.versions, svc, slug_of(request))})


async def read_version(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    number = int(request.path_params["number"])
    if number > 2**31 - 1:
        raise NotFound("no such version")
    return JSONResponse(await svc.call(journey_service.version, svc, slug_of(request), number))


async def diff_versions(request: Request) -> Response:
    await admin(request)
    older, newer = int_param(request, "from"), int_param(request, "to")
    assert older is not None and newer is not None
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.diff, svc, slug_of(request), older, newer))


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
    return JSONResponse(await svc.call(journey_service.enter, svc, slug_of(request), found))


routes = [
    Route("/v1/journeys", list_journeys, methods=["GET"]),
    Route("/v1/journeys", create_journey, methods=["POST"]),
    Route("/v1/journeys/{slug}", read_journey, methods=["GET"]),
    Route("/v1/journeys/{slug}/draft", update_draft, methods=["PUT"]),
    Route("/v1/journeys/{slug}/publish", publish, methods=["POST"]),
    *[Route(f"/v1/journeys/{{slug}}/{action}", _status_action(action), methods=["POST"])
      for action in journey_service.TRANSITIONS],
    Route("/v1/journeys/{slug}/versions", list_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/versions/{number:int}", read_version, methods=["GET"]),
    Route("/v1/journeys/{slug}/diff", diff_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/entries", enter_user, methods=["POST"]),
]
