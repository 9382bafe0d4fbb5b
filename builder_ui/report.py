"""(issue 7, in progress)"""

from __future__ import annotations

from starlette.routing import BaseRoute

ROUTES: list[BaseRoute] = []  # relative to /builder
