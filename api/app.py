"""The application factory: routes by concern, one error handler per error family, and the
shared services built when the app starts (and closed when it stops)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

import builder_ui
from actions.settings import load_settings
from builder_ui import errors as builder_errors
from engine.durable.backend import make_matcher
from engine.runtime import Runtime
from storage import connect
from workers.push import Pusher

from . import openapi
from .auth import KeyStore
from .dispatch_loop import DispatchLoop
from .engine_loop import EngineLoop
from .heap import freeze_startup_heap
from .ingest_queue import IngestQueue
from .problems import Problem, handle_http_exception, handle_problem, problem_response
from .routes import analytics, coupons, health, ingest, journeys, profiles
from .security_headers import SecurityHeaders
from .services import Services
from .settings import Settings

log = logging.getLogger("journeyflow.api")  # under `journeyflow`, so serve prints it


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """The last resort, for a bug: every input should have been refused as a `Problem` before
    it could raise anything else. The client learns only that it was our fault; the traceback
    goes to the log, with the request line, for whoever fixes it. (Starlette then re-raises it
    for the server, which logs it again without the request line.)"""
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(Problem("an unexpected error; it has been logged"), request.url.path)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _pages_for_the_builder(handler: Handler) -> Handler:
    """The same handler, except that a browser visiting a builder address gets an HTML page
    (`builder_ui.errors`) instead of problem+json."""
    async def handle(request: Request, exc: Exception) -> Response:
        answer = await handler(request, exc)
        if not builder_errors.wants_page(request):
            return answer
        detail = str(getattr(exc, "detail", "") or "") if answer.status_code < 500 else ""
        return builder_errors.error_page(request, answer.status_code, detail)
    return handle


async def root(request: Request) -> Response:
    """Where a person lands who opens the server's address: the builder. A program that asks
    learns where the API is described from the Link header (RFC 8631)."""
    return RedirectResponse("/builder/", status_code=307,
                            headers={"Link": '</openapi.json>; rel="service-desc"'})


def create_app(settings: Settings) -> Starlette:
    document = openapi.document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = connect(settings.database_url)
        lock = threading.RLock()
        runtime = Runtime(db, settings.clock, matcher=make_matcher(settings.rules_backend),
                          default_zone=settings.default_zone)
        keys = KeyStore(db, settings.key_cache_seconds, settings.signature_tolerance_seconds)
        svc = Services(settings, db, runtime, keys, IngestQueue(lambda m: svc.accept(m),
                                                                settings.group_commit_max_messages), lock)
        pusher = None
        if settings.run_engine:
            svc.engine = EngineLoop(runtime, db, settings.clock, lock, settings.engine_batch,
                                    settings.engine_idle_seconds)
            runtime.on_accepted = svc.engine.wake
        elif settings.redis_url:  # workers apply the events: wake each one's partition job at once
            pusher = Pusher(settings.redis_url, settings.queue)
            runtime.on_accepted = pusher.push
        dispatch = (DispatchLoop(db, settings.actions or load_settings(None, {}), settings.clock)
                    if settings.run_dispatcher else None)
        app.state.services = svc
        freeze_startup_heap()  # after everything above is built: api/heap.py says why
        if pusher is not None:
            pusher.start()
        svc.queue.start()
        if svc.engine is not None:
            svc.engine.start()
        if dispatch is not None:
            dispatch.start()
        try:
            yield
        finally:
            await svc.queue.stop()
            if pusher is not None:
                pusher.close()
            if svc.engine is not None:
                svc.engine.stop()
            if dispatch is not None:
                dispatch.stop()
            runtime.close()
            db.dispose()

    routes = [
        *ingest.routes, *journeys.routes, *analytics.routes, *profiles.routes, *coupons.routes, *health.routes,
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/", root, methods=["GET"]),
        *builder_ui.routes(),  # the visual builder, under /builder (issue 6)
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)], exception_handlers={
        Problem: _pages_for_the_builder(handle_problem), HTTPException: _pages_for_the_builder(handle_http_exception),
        Exception: _pages_for_the_builder(handle_unexpected)})
