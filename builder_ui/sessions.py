"""Who is using the builder: server-side sessions, and CSRF tokens on every change.

The session cookie holds a random token (the database keeps its hash: `storage.users`); it is
HttpOnly, so page scripts cannot read it, SameSite=Lax, so other sites' forms do not carry
it, and Secure when the builder is reached over HTTPS. SameSite is not the whole defence (it
does not hold across sibling subdomains, nor in every browser), so every request that changes
something must also carry the session's CSRF token: forms in a hidden field, htmx requests in
the `X-CSRF-Token` header that the page's body hands down to every request
(`hx-headers:inherited`). The login form has no session yet: it uses a double-submit token
(the same random value in a Strict cookie and in the form).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from api.services import services
from storage import users

SESSION_COOKIE = "jf_session"
LOGIN_COOKIE = "jf_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = timedelta(hours=12)  # a working day, then sign in again
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Handler = Callable[[Request], Awaitable[Response]]


def secure(request: Request) -> bool:
    """Whether cookies set on this response get `Secure`. The scheme is https when uvicorn
    serves TLS itself, or when it trusts the proxy's X-Forwarded-Proto (`serve --proxy-headers`);
    `secure_cookies` covers a TLS proxy it does not trust, where the request looks like http
    but the browser never sends anything in clear."""
    return request.url.scheme == "https" or services(request).settings.secure_cookies


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=secure(request))


def login_token(request: Request) -> str:
    """The login form's double-submit token: the cookie's, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(users.TOKEN_BYTES)


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/", httponly=True, samesite="strict",
                        secure=secure(request))


def same(a: str | None, b: str | None) -> bool:
    """Equal tokens, compared in constant time."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


async def current(request: Request) -> users.Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    svc = services(request)
    now = svc.settings.clock.now()

    def read() -> users.Session | None:
        with svc.db.connect() as conn:
            return users.session(conn, token, now)

    return await svc.call(read)


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/builder/login?next={quote(target)}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _csrf_ok(request: Request, session: users.Session) -> bool:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return same(sent, session.csrf_token)


def login_required(handler: Handler) -> Handler:
    """Refuse anonymous requests (to the login page, or with `HX-Redirect` for htmx) and
    state-changing requests without the session's CSRF token (403)."""

    @wraps(handler)
    async def guarded(request: Request) -> Response:
        session = await current(request)
        if session is None:
            if is_htmx(request):
                return Response(status_code=401, headers={"HX-Redirect": login_url(request)})
            return RedirectResponse(login_url(request), status_code=303)
        if request.method not in SAFE_METHODS and not await _csrf_ok(request, session):
            return PlainTextResponse("The form's security token is missing or out of date: reload the page.",
                                     status_code=403)
        request.state.session = session
        return await handler(request)

    return guarded


def session_of(request: Request) -> users.Session:
    found: users.Session = request.state.session
    return found
