"""The application factory: routes by concern, one error handler per error family, and the
shared services built when the app starts (and closed when it stops)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import builder_ui
from actions.settings import load_settings
from engine.durable.backend import make_matcher
from engine.runtime import Runtime
from storage import connect

from . import openapi
from .auth import KeyStore
from .dispatch_loop import DispatchLoop
from .engine_loop import EngineLoop
from .ingest_queue import IngestQueue
from .problems import Problem, handle_http_exception, handle_problem
from .routes import analytics, coupons, health, ingest, journeys, profiles
from .services import Services
from .settings import Settings


def create_app(settings: Settings) -> Starlette:
    document = openapi.document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = connect(settings.database_url)
        lock = threading.RLock()
        runtime = Runtime(db, settings.clock, matcher=make_matcher(settings.rules_backend))
        keys = KeyStore(db, settings.key_cache_seconds, settings.signature_tolerance_seconds)
        svc = Services(settings, db, runtime, keys, IngestQueue(lambda m: svc.accept(m),
                                                                settings.group_commit_max_messages), lock)
        if settings.run_engine:
            svc.engine = EngineLoop(runtime, db, settings.clock, lock, settings.engine_batch,
                                    settings.engine_idle_seconds)
        dispatch = (DispatchLoop(db, settings.actions or load_settings(None, {}), settings.clock)
                    if settings.run_dispatcher else None)
        app.state.services = svc
        svc.queue.start()
        if svc.engine is not None:
            svc.engine.start()
        if dispatch is not None:
            dispatch.start()
        try:
            yield
        finally:
            await svc.queue.stop()
            if svc.engine is not None:
                svc.engine.stop()
            if dispatch is not None:
                dispatch.stop()
            runtime.close()
            db.dispose()

    routes = [
        *ingest.routes, *journeys.routes, *analytics.routes, *profiles.routes, *coupons.routes, *health.routes,
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *builder_ui.routes(),  # the visual builder, under /builder (issue 6)
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        Problem: handle_problem, HTTPException: handle_http_exception})
