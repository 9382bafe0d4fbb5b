"""Signing in and out.

A failed login answers the same whatever was wrong (no such user, wrong password), and takes
as long either way (an unknown name is checked against a dummy hash). Every attempt is
counted in the database before its password is checked (`throttle`): against the browser's
device cookie when it holds one for that user, else against the client's address, the name
from that address, and the name from strangers; past an allowance the form answers 429 with
how long to wait, without checking the password at all. A success sets the device cookie.
"""

from __future__ import annotations

import math
from dataclasses import replace
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.services import services
from storage import users

from . import passwords, sessions, throttle
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
    svc = services(request)
    now = svc.settings.clock.now()
    address, cookie = throttle.source(request), request.cookies.get(throttle.DEVICE_COOKIE)

    def admit() -> tuple[users.User | None, throttle.Admission]:
        with svc.db.connect() as conn:
            user = users.find_user(conn, username)
        device = throttle.trusted_device(cookie, user, now)
        return user, throttle.admit(svc, throttle.keys(username, address, device), now)

    user, admission = await svc.call(admit)
    if admission.wait_seconds > 0:
        return _form(request, f"Too many failed attempts: try again in {math.ceil(admission.wait_seconds)} seconds.",
                     next_url, username, status=429)

    def check() -> tuple[str, users.User] | None:
        if user is None:
            passwords.verify(passwords.dummy_hash(), password)
            return None
        if not passwords.verify(user.password_hash, password):
            return None
        signed_in = user
        with svc.writing(), svc.db.begin() as conn:
            if passwords.needs_rehash(user.password_hash):
                signed_in = replace(user, password_hash=passwords.hash_password(password))
                users.set_password_hash(conn, user.id, signed_in.password_hash)
            token, _ = users.start_session(conn, user, now, sessions.SESSION_LIFETIME)
        throttle.succeeded(svc, admission)
        return token, signed_in

    checked = await svc.call(check)
    if checked is None:
        return _form(request, GENERIC_FAILURE, next_url, username, status=401)
    token, signed_in = checked
    response = RedirectResponse(next_url, status_code=303)
    sessions.set_session_cookie(response, request, token)
    throttle.set_device_cookie(response, request, throttle.new_device_cookie(signed_in, now))
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
