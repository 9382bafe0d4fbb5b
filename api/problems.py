"""Errors the API reports, and how they leave: RFC 9457 problem+json, naming each bad field.

Everything a route refuses is raised once as a `Problem` subclass and turned into a response
by the one handler registered for the base class (Starlette looks handlers up along the MRO).
Bad input names its fields in `errors`: `[{"field": "batch[2].userId", "detail": "is required"}]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://journeyflow.dev/problems/"


class Problem(Exception):
    """Base of every error the API answers with; subclasses fix the status and title."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, fields: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    def body(self, instance: str) -> dict[str, Any]:
        # `code` and `message` are what the Segment and RudderStack SDKs read off an error body
        # (they raise KeyError without them); RFC 9457 allows such extension members.
        out: dict[str, Any] = {"type": TYPE_BASE + self.slug, "title": self.title, "status": self.status,
                               "detail": self.detail, "instance": instance, "code": self.slug,
                               "message": self.detail}
        if self.fields:
            out["errors"] = [{"field": k, "detail": v} for k, v in self.fields.items()]
        return out


class BadRequest(Problem):
    status, title, slug = 400, "Invalid request", "invalid-request"


class Unauthorized(Problem):
    status, title, slug = 401, "Not authenticated", "unauthorized"

    def __init__(self, detail: str) -> None:
        # Segment-style senders use HTTP Basic; say both schemes are accepted.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer, Basic realm="journeyflow"'})


class Forbidden(Problem):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(Problem):
    """Well-formed input that cannot be used, such as journey text with errors."""

    status, title, slug = 422, "Unprocessable", "unprocessable"

    def __init__(self, detail: str, diagnostics: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.diagnostics = diagnostics

    def body(self, instance: str) -> dict[str, Any]:
        return {**super().body(instance), "diagnostics": self.diagnostics}


class Unavailable(Problem):
    status, title, slug = 503, "Unavailable", "unavailable"


def problem_response(problem: Problem, instance: str) -> Response:
    return JSONResponse(problem.body(instance), status_code=problem.status, headers=problem.headers,
                        media_type=MEDIA_TYPE)


async def handle_problem(request: Request, exc: Exception) -> Response:
    """The one handler for every `Problem`."""
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route or method) in the same shape as ours."""
    status = int(getattr(exc, "status_code", 500))
    detail = str(getattr(exc, "detail", "")) or "error"
    body = {"type": TYPE_BASE + f"http-{status}", "title": detail, "status": status, "detail": detail,
            "instance": request.url.path, "code": f"http-{status}", "message": detail}
    headers = getattr(exc, "headers", None) or {}
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)
