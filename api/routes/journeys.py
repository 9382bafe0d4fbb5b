"""Journey management: create from text, read (text, graph, problems with line and column),
edit the draft, publish, pause, resume, archive, versions and their diff, and entering users
into an API-triggered journey. Admin keys only; the work is `api.journey_service`'s."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.messages import IDENTITY_TRAITS, MAX_ID_LENGTH

from .. import journey_service
from ..problems import BadRequest
from ..services import services
from ._guard import SLUG, admin, admin_json, int_param, path_id, slug_of, text_field

# ---------------------------------------------------------------- handlers


async def journeys(request: Request) -> Response:
    """GET lists, POST creates: one route for the path, so that a 405 (and OPTIONS) names both
    methods in Allow. Two routes on one path each answer 405 with their own methods only."""
    return await (create_journey(request) if request.method == "POST" else list_journeys(request))


async def list_journeys(request: Request) -> Response:
    await admin(request)
    svc = services(request)
    return JSONResponse({"journeys": await svc.call(journey_service.list_all, svc)})


async def create_journey(request: Request) -> Response:
    data = await admin_json(request)
    source = text_field(data, "source")
    slug = text_field(data, "slug", required=False)
    if slug is not None and not SLUG.fullmatch(slug):
        raise BadRequest("slug must be lower-case letters, digits, - and _",
                         {"slug": f"must match {SLUG.pattern}"})
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
    number = path_id(request, "number")
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
        value = text_field(data, field, required=False, max_length=MAX_ID_LENGTH)
        if value:
            found.append((kind, value))
    extra = data.get("identities")
    extra = {} if extra is None else extra
    if not isinstance(extra, dict) or not all(
            k in IDENTITY_TRAITS and isinstance(v, str) and 0 < len(v) <= MAX_ID_LENGTH and "\x00" not in v
            for k, v in extra.items()):
        raise BadRequest("identities must map identity kinds to strings",
                         {"identities": f"must map {', '.join(IDENTITY_TRAITS)} to non-empty strings "
                                        f"of at most {MAX_ID_LENGTH} characters, without NUL"})
    found += [(str(k), v) for k, v in extra.items()]
    if not found:
        raise BadRequest("name the user: userId, anonymousId or identities",
                         {"userId": "userId, anonymousId or identities is required"})
    svc = services(request)
    return JSONResponse(await svc.call(journey_service.enter, svc, slug_of(request), found))


routes = [
    Route("/v1/journeys", journeys, methods=["GET", "POST"]),
    Route("/v1/journeys/{slug}", read_journey, methods=["GET"]),
    Route("/v1/journeys/{slug}/draft", update_draft, methods=["PUT"]),
    Route("/v1/journeys/{slug}/publish", publish, methods=["POST"]),
    *[Route(f"/v1/journeys/{{slug}}/{action}", _status_action(action), methods=["POST"])
      for action in journey_service.TRANSITIONS],
    Route("/v1/journeys/{slug}/versions", list_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/versions/{number}", read_version, methods=["GET"]),
    Route("/v1/journeys/{slug}/diff", diff_versions, methods=["GET"]),
    Route("/v1/journeys/{slug}/entries", enter_user, methods=["POST"]),
]
