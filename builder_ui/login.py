"""Signing in and out.

A failed login answers the same whatever was wrong (no such user, wrong password), takes as
long either way (an unknown name is checked against a dummy hash), and counts against both
the name and the client's address (`throttle.LoginThrottle`); past a few failures the form
answers 429 with how long to wait, without checking the password at all.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.services import services
from storage import users

from . import passwords, sessions
from .state import builder_state
from .templating import render

GENERIC_FAILURE = "That user name and password do not match."


def _next_url(value: object) -> str:
    """Where to go after signing in: only a path inside the builder, never another site."""
    text = value if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not text.startswith("/builder") or text.startswith("//"):
        return "/builder/"
    return text


def _form(request: Request, error: str | None, next_url: str, username: str = "", status: int = 200) -> Response:
    token = sessions.login_token(request)
    response = render(request, "login.html", {"error": error, "next": next_url, "username": username,
                                              "login_csrf": token}, status_code=status)
    sessions.set_login_cookie(response, request, token)
    return response


async def login_page(request: Request) -> Response:
    if await sessions.current(request) is not None:
        return RedirectResponse(_next_url(request.query_params.get("next")), status_code=303)
    return _form(request, None, _next_url(request.query_params.get("next")))


async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_url = _next_url(form.get("next"))
    if not sessions.same(request.cookies.get(sessions.LOGIN_COOKIE), str(form.get(sessions.CSRF_FIELD, ""))):
        return _form(request, "The form expired: please sign in again.", next_url, username, status=403)
    throttle = builder_state(request).throttle
    keys = (f"user:{username.lower()}", f"addr:{request.client.host if request.client else '?'}")
    wait = throttle.wait_seconds(*keys)
    if wait > 0:
        return _form(request, f"Too many failed attempts: try again in {math.ceil(wait)} seconds.", next_url,
                     username, status=429)
    svc = services(request)
    now = svc.settings.clock.now()

    def check() -> str | None:
        with svc.db.connect() as conn:
            user = users.find_user(conn, username)
        if user is None:
            passwords.verify(passwords.dummy_hash(), password)
            return None
        if not passwords.verify(user.password_hash, password):
            return None
        with svc.writing(), svc.db.begin() as conn:
            if passwords.needs_rehash(user.password_hash):
                users.set_password_hash(conn, user.id, passwords.hash_password(password))
            token, _ = users.start_session(conn, user, now, sessions.SESSION_LIFETIME)
        return token

    token = await svc.call(check)
    if token is None:
        throttle.failed(*keys)
        return _form(request, GENERIC_FAILURE, next_url, username, status=401)
    throttle.succeeded(keys[0])
    response = RedirectResponse(next_url, status_code=303)
    sessions.set_session_cookie(response, request, token)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
    return response


@sessions.login_required
async def logout(request: Request) -> Response:
    token = request.cookies.get(sessions.SESSION_COOKIE, "")
    svc = services(request)

    def end() -> None:
        with svc.writing(), svc.db.begin() as conn:
            users.end_session(conn, token)

    await svc.call(end)
    response: Response = RedirectResponse("/builder/login", status_code=303)
    if sessions.is_htmx(request):
        response = Response(status_code=204, headers={"HX-Redirect": "/builder/login"})
    response.delete_cookie(sessions.SESSION_COOKIE, path="/")
    return response
