"""/openapi.json matches the routes exactly, and every answer the API gives conforms to it
(schemathesis, generating requests from the document, against a real server)."""

from __future__ import annotations

import re

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from api.app import create_app
from api.openapi import document
from api.settings import Settings

from .conftest import Server

EXAMPLES_PER_OPERATION = 12  # enough to find a crash on each route, small enough for CI
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_the_document_lists_exactly_the_routes() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    routed = {(re.sub(r":\w+}", "}", r.path), m.lower()) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or ()) if m != "HEAD"}
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert routed == documented


def test_no_answer_is_a_server_error_or_breaks_the_schema(server: Server) -> None:
    """Each operation in turn, as a Hypothesis test of its own (schemathesis's pytest plugin
    runs lazily-loaded schemas as subtests, which this pytest does not support)."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {server.admin}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        conforms()
        checked.append(operation.label)
    documented = {f"{method.upper()} {path}" for path, ops in document()["paths"].items() for method in ops}
    assert documented - set(checked) == {"GET /openapi.json"}  # schemathesis leaves out the schema's own URL
