"""Errors in the builder shown as pages, not as the API's problem+json.

The builder is mounted beside the API and shares its exception handlers, which answer with
problem+json: right for a script, a wall of JSON for a marketer who followed a stale link
(`/builder/journeys/old-name`). A browser navigating to a builder address (it asks for HTML and
is not an htmx partial request) gets an HTML page instead: what went wrong in words, and the
way back. htmx requests keep their own answers (panels show their errors in place).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .templating import render

PREFIX = "/builder"
HEADLINES = {
    400: "This request could not be read",
    403: "This action was refused",
    404: "There is nothing at this address",
    405: "This address does not do that",
    409: "Someone changed this at the same time",
    413: "That was too large",
    422: "This could not be used",
    429: "Too many tries",
}
ADVICE = {
    404: "The journey may have been renamed or archived, or the link is mistyped. The journey list has every "
         "journey there is.",
    409: "Reload the page to see the latest version, then make your change again.",
}


def wants_page(request: Request) -> bool:
    """Whether the request is a browser's visit to a builder address, to be answered with HTML."""
    path = request.url.path
    if not (path == PREFIX or path.startswith(PREFIX + "/")) or path.startswith(PREFIX + "/static/"):
        return False
    if request.headers.get("hx-request") == "true":
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, status: int, detail: str) -> Response:
    """An HTML page for an error of this status, with the error's own words and the way back."""
    headline = HEADLINES.get(status, "Something went wrong" if status >= 500 else "This could not be done")
    advice = ADVICE.get(status, "Go back and try again." if status < 500 else
                        "This is a fault on our side, and it has been logged. Try again in a moment.")
    return render(request, "error.html", {"status": status, "headline": headline, "detail": detail,
                                          "advice": advice}, status_code=status)
