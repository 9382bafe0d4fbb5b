"""/openapi.json matches the routes exactly (test_schemathesis.py checks that the server does
what it says, and test_hostile_input.py that nothing it is sent is a server error)."""

from __future__ import annotations

import re

from starlette.routing import Route

from api.app import create_app
from api.openapi import document
from api.settings import Settings


def test_the_document_lists_exactly_the_routes() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    routed = {(re.sub(r":\w+}", "}", r.path), m.lower()) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert routed == documented



def test_each_path_is_one_route() -> None:
    """Starlette answers a method a path does not take with the first matching route's methods
    in Allow: two routes on one path (GET and POST of /v1/journeys, once) made 405 and OPTIONS
    deny that the other method exists."""
    paths = [r.path for r in create_app(Settings(database_url="sqlite://")).routes if isinstance(r, Route)]
    assert sorted(p for p in set(paths) if paths.count(p) > 1) == []
