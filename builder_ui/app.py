"""The builder's routes, mounted by `api.app.create_app` under `/builder` beside the API.

Every page and partial is rendered on the server; htmx swaps the partials in. Routes that
change something are POSTs guarded by the session's CSRF token (`sessions.login_required`).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import audience, conditions, editor, login, pages, panels, pools, report, simulation

PREFIX = "/builder"
JOURNEY = "/journeys/{slug}"


def _builder_routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/", pages.journeys, methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login, methods=post),
        Route("/logout", login.logout, methods=post),
        Route("/journeys", pages.create, methods=post),
        Route(JOURNEY, editor.page, methods=["GET"]),
        Route(f"{JOURNEY}/insert", editor.insert, methods=post),
        Route(f"{JOURNEY}/move", editor.move, methods=post),
        Route(f"{JOURNEY}/shift", editor.shift, methods=post),
        Route(f"{JOURNEY}/delete", editor.delete, methods=post),
        Route(f"{JOURNEY}/branches/add", editor.add_branch, methods=post),
        Route(f"{JOURNEY}/branches/remove", editor.remove_branch, methods=post),
        Route(f"{JOURNEY}/text", editor.text, methods=post),
        Route(f"{JOURNEY}/restore", editor.restore, methods=post),
        *[Route(f"{JOURNEY}/{action}", editor.status, methods=post) for action in editor.STATUS_ACTIONS],
        Route(f"{JOURNEY}/review", audience.review_panel, methods=["GET"]),
        Route(f"{JOURNEY}/step", panels.step_panel, methods=["GET"]),
        Route(f"{JOURNEY}/step/check", panels.step_check, methods=post),
        Route(f"{JOURNEY}/step", panels.step_apply, methods=post),
        Route(f"{JOURNEY}/settings", panels.settings_panel, methods=["GET"]),
        Route(f"{JOURNEY}/settings", panels.settings_apply, methods=post),
        Route(f"{JOURNEY}/condition", conditions.condition, methods=post),
        *simulation.ROUTES,
        *report.ROUTES,
        *pools.ROUTES,
        Mount("/static", StaticFiles(packages=[("builder_ui", "static")]), name="static"),
    ]


def routes() -> list[BaseRoute]:
    """The builder under `/builder`. (Not `/`: the API's routes are listed exactly in its
    OpenAPI document, and the builder's address is printed by `journeyflow serve`.)"""
    return [Mount(PREFIX, routes=_builder_routes())]
