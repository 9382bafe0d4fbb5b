"""Templates: one Jinja2 environment, autoescaping everything, strict about missing names.

Autoescaping is on for every template (they are all HTML), so journey names, messages and
conditions typed by users are always shown as text. Nothing is marked safe except what
`tojson` produces for attributes. Starlette's `TemplateResponse` keeps the template and its
context on the response, so tests check a partial by what it was given.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .palette import KINDS, STEP_KINDS


@cache
def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("builder_ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals |= {"KINDS": KINDS, "STEP_KINDS": STEP_KINDS}
    env.filters["percent"] = lambda value: "–" if value is None else f"{value * 100:.1f}%"
    return Jinja2Templates(env=env)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    session = getattr(request.state, "session", None)
    base = {"csrf": session.csrf_token if session is not None else "", "user": session.user if session else None,
            "root": "/builder"}
    return templates().TemplateResponse(request, name, {**base, **context}, status_code=status_code,
                                        headers=headers)
