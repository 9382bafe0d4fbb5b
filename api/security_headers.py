"""Response headers that make the browser refuse what the builder never does.

The builder's pages change journeys with a click, so another site must not frame them and
trick a signed-in marketer into clicking Publish (clickjacking): `frame-ancestors 'none'`.
Its pages load only their own scripts (no inline script, no `eval`, no other origin), so a
Content-Security-Policy that allows nothing else turns a markup injection that escaped the
templates' autoescaping into inert text instead of script. Styles allow inline attributes,
which htmx's indicators and a few templates use; a style cannot run code.

Every response also gets `nosniff` (a JSON answer is never read as HTML) and, when the
request came over HTTPS (directly or through a trusted proxy), HSTS, so the browser never
again tries plain HTTP for this host. Written as plain ASGI, not `BaseHTTPMiddleware`, so the
ingest path pays one header append and no extra task.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the domain are not ours to decide

_EVERY: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)
_PAGES: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),  # for browsers older than frame-ancestors
    (b"referrer-policy", b"same-origin"),
)
_HSTS: tuple[tuple[bytes, bytes], ...] = ((b"strict-transport-security", HSTS.encode()),)
# What each response gets, by (is a page, came over HTTPS): built once, not per request.
_EXTRA = {(page, https): _EVERY + (_PAGES if page else ()) + (_HSTS if https else ())
          for page in (False, True) for https in (False, True)}


def _is_page(path: str) -> bool:
    """The builder's pages, and "/", which redirects to them; the API answers JSON."""
    return path == "/" or path == "/builder" or path.startswith("/builder/")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = _EXTRA[_is_page(scope.get("path", "")), scope.get("scheme") == "https"]

        async def with_headers(message: Message) -> None:
            # A header the app set itself wins. The names are compared lower-cased (ASGI asks
            # for lower case; Starlette's responses send it), one pass over a short list.
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = [name.lower() for name, _ in headers]
                headers += [header for header in extra if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
