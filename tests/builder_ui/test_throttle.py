"""The login throttle (issue 17), on both backends: attempts are counted in the database before
any password is checked, so concurrent guesses and several server processes get no more checks
than the allowance; a browser holding the account's device cookie is counted apart, so a flood
from strangers never locks the account's own browsers out; a success clears what it proved.

Concurrency and two processes go through real uvicorn servers on loopback. What needs many
client addresses or a clock that moves goes through the app itself, over httpx's ASGI
transport (which sets the client address), with the app's lifespan run as uvicorn would.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache

import httpx
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.requests import Request

from api.app import create_app
from api.settings import Settings
from builder_ui import throttle
from builder_ui.passwords import hash_password
from engine.clock import Clock, VirtualClock
from storage import login_attempts, users
from storage.database import writer
from storage.login_attempts import login_attempts as attempts_table
from tests.api.conftest import serve_in_thread
from tests.storage.racing import race

from .conftest import HIDDEN_CSRF, PASSWORD, USERNAME

OTHER, OTHER_PASSWORD = "bob", "another correct horse"
START = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
TOO_MANY = re.compile(r"Too many failed attempts: try again in (\d+) seconds\.")
CONCURRENT_GUESSES = 40


@cache
def hashed(password: str) -> str:
    return hash_password(password)


def with_users(db: Engine) -> str:
    """`db` with two builder users; its URL, for an app to open."""
    with db.begin() as conn:
        users.create_user(conn, USERNAME, hashed(PASSWORD), True, START)
        users.create_user(conn, OTHER, hashed(OTHER_PASSWORD), False, START)
    return db.url.render_as_string(hide_password=False)


def form_data(client: httpx.Client | httpx.AsyncClient, page: str, username: str, password: str) -> dict[str, str]:
    token = HIDDEN_CSRF.search(page)
    assert token is not None, "no login token on the form"
    return {"username": username, "password": password, "csrf_token": token.group(1), "next": "/builder/"}


def keys_in(db: Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(select(attempts_table.c.key)).scalars())


# ------------------------------------------------------------------ real servers on loopback


@contextmanager
def serving(url: str) -> Iterator[str]:
    running, thread, base = serve_in_thread(Settings(database_url=url))
    try:
        yield base
    finally:
        running.should_exit = True
        thread.join()


def sync_attempt(base: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as client:
        data = form_data(client, client.get("/builder/login").text, username, password)
        return client.post("/builder/login", data=data)


def test_concurrent_guesses_get_no_more_checks_than_the_allowance(db: Engine) -> None:
    url = with_users(db)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    with serving(url) as base, httpx.Client(base_url=base) as first:
        data = form_data(first, first.get("/builder/login").text, USERNAME, "guess")  # one form, posted 40 times
        cookies = dict(first.cookies)

        def guess(_: int) -> None:
            with httpx.Client(base_url=base, cookies=cookies, timeout=120) as client:
                answer = client.post("/builder/login", data=data)
            with lock:
                answers.append(answer)

        race(CONCURRENT_GUESSES, guess)
    codes = [answer.status_code for answer in answers]
    assert codes.count(401) == throttle.ACCOUNT_FROM_SOURCE.attempts  # the rest were never checked
    assert codes.count(429) == CONCURRENT_GUESSES - throttle.ACCOUNT_FROM_SOURCE.attempts
    assert all(TOO_MANY.search(answer.text) for answer in answers if answer.status_code == 429)
    assert all("do not match" in answer.text for answer in answers if answer.status_code == 401)


def test_two_processes_on_one_database_share_the_count(db: Engine) -> None:
    url = with_users(db)
    with serving(url) as one, serving(url) as two:
        for n in range(throttle.ACCOUNT_FROM_SOURCE.attempts):
            assert sync_attempt((one, two)[n % 2], USERNAME, "guess").status_code == 401
        assert sync_attempt(one, USERNAME, "guess").status_code == 429
        assert sync_attempt(two, USERNAME, PASSWORD).status_code == 429  # even the right password waits


# ------------------------------------------------------------------ the app over ASGI, many addresses


@asynccontextmanager
async def running(url: str, clock: Clock) -> AsyncIterator[Starlette]:
    app = create_app(Settings(database_url=url, clock=clock))
    async with app.router.lifespan_context(app):
        yield app


async def attempt(app: Starlette, address: str, username: str, password: str, device: str | None = None,
                  scheme: str = "http") -> httpx.Response:
    """One sign-in from a browser at `address` (holding `device` as its device cookie, if given)."""
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    cookies = {throttle.DEVICE_COOKIE: device} if device else None
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://builder.test", cookies=cookies) as client:
        page = await client.get("/builder/login")
        return await client.post("/builder/login", data=form_data(client, page.text, username, password))


def device_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    device = response.cookies.get(throttle.DEVICE_COOKIE)
    assert device, "a sign-in gives the browser a device cookie"
    return device


def exhaust_strangers(db: Engine, username: str, now: datetime) -> None:
    """Strangers' guesses at `username` up to their allowance, as a botnet would spend it."""
    key, limit = throttle.keys(username, "unused", None)[2]
    with writer(db).begin() as conn:
        for _ in range(limit.attempts):
            login_attempts.count(conn, key, limit.window, now)


def test_a_flood_from_many_addresses_does_not_stop_the_accounts_own_browser(db: Engine) -> None:
    url, clock = with_users(db), VirtualClock(START)

    async def go() -> None:
        async with running(url, clock) as app:
            device = device_of(await attempt(app, "192.0.2.10", USERNAME, PASSWORD))
            flood = [(await attempt(app, f"198.51.100.{n}", USERNAME, "guess")).status_code for n in range(1, 31)]
            assert flood.count(401) == throttle.ACCOUNT_FROM_STRANGERS.attempts  # then strangers wait...
            assert set(flood[throttle.ACCOUNT_FROM_STRANGERS.attempts:]) == {429}
            assert (await attempt(app, "203.0.113.5", USERNAME, PASSWORD)).status_code == 429  # ...even with it
            own = await attempt(app, "198.51.100.1", USERNAME, PASSWORD, device)  # from a flooding address too
            assert own.status_code == 303
            # The device's own typos count against it alone: more than any stranger's allowance here.
            device = device_of(own)
            for _ in range(throttle.DEVICE.attempts):
                assert (await attempt(app, "192.0.2.10", USERNAME, "typo", device)).status_code == 401
            refused = await attempt(app, "192.0.2.10", USERNAME, PASSWORD, device)
            assert refused.status_code == 429  # a stolen device cookie buys no more than its allowance
            assert (await attempt(app, "192.0.2.10", OTHER, OTHER_PASSWORD)).status_code == 303  # the address is free

    asyncio.run(go())


def test_a_device_cookie_of_another_user_or_a_forged_one_is_not_trusted(db: Engine) -> None:
    url, clock = with_users(db), VirtualClock(START)

    async def go() -> None:
        async with running(url, clock) as app:
            mine = device_of(await attempt(app, "192.0.2.10", USERNAME, PASSWORD))
            bobs = device_of(await attempt(app, "192.0.2.11", OTHER, OTHER_PASSWORD))
            exhaust_strangers(db, USERNAME, clock.now())
            user_id, expires, device, _ = mine.split(".")
            forged = f"{user_id}.{expires}.{device}.{'0' * 64}"
            relabelled = ".".join([user_id, *bobs.split(".")[1:]])  # bob's cookie claiming to be marketer's
            for cookie in (bobs, forged, relabelled, "garbage"):
                assert (await attempt(app, "192.0.2.12", USERNAME, PASSWORD, cookie)).status_code == 429, cookie
            assert (await attempt(app, "192.0.2.12", USERNAME, PASSWORD, mine)).status_code == 303

    asyncio.run(go())


def test_the_device_cookie_is_http_only_lax_and_secure_over_https(db: Engine) -> None:
    url = with_users(db)

    async def go() -> None:
        async with running(url, VirtualClock(START)) as app:
            for scheme in ("http", "https"):
                response = await attempt(app, "192.0.2.10", USERNAME, PASSWORD, scheme=scheme)
                cookie = next(value.lower() for name, value in response.headers.multi_items()
                              if name == "set-cookie" and value.startswith(f"{throttle.DEVICE_COOKIE}="))
                assert "httponly" in cookie and "samesite=lax" in cookie and "path=/builder/login" in cookie
                assert f"max-age={int(throttle.DEVICE_LIFETIME.total_seconds())}" in cookie
                assert ("secure" in cookie.split("; ")) == (scheme == "https")

    asyncio.run(go())


def test_a_success_clears_the_pair_but_a_spray_from_one_address_still_waits(db: Engine) -> None:
    url, clock = with_users(db), VirtualClock(START)
    pair, source = throttle.ACCOUNT_FROM_SOURCE.attempts, throttle.SOURCE.attempts

    async def go() -> None:
        async with running(url, clock) as app:
            for _ in range(pair - 1):
                assert (await attempt(app, "192.0.2.10", USERNAME, "typo")).status_code == 401
            assert (await attempt(app, "192.0.2.10", USERNAME, PASSWORD)).status_code == 303
            for _ in range(pair):  # a new browser (no device cookie) at the same address: a full allowance
                assert (await attempt(app, "192.0.2.10", USERNAME, "typo")).status_code == 401
            assert (await attempt(app, "192.0.2.10", USERNAME, PASSWORD)).status_code == 429

            # One address spraying a password over many names, signing in to its own account midway:
            for n in range(source - 1):
                assert (await attempt(app, "198.51.100.7", f"name{n}", "Summer2026!")).status_code == 401
            assert (await attempt(app, "198.51.100.7", OTHER, OTHER_PASSWORD)).status_code == 303  # refunds itself
            assert (await attempt(app, "198.51.100.7", "one-more", "Summer2026!")).status_code == 401
            sprayed = await attempt(app, "198.51.100.7", "another", "Summer2026!")
            assert sprayed.status_code == 429
            assert (await attempt(app, "198.51.100.7", OTHER, OTHER_PASSWORD)).status_code == 429  # no device cookie
            assert (await attempt(app, "198.51.100.8", "another", "Summer2026!")).status_code == 401  # others may

    asyncio.run(go())


def test_a_refusal_says_when_the_window_ends_in_the_usual_words(db: Engine) -> None:
    url, clock = with_users(db), VirtualClock(START)

    async def go() -> None:
        async with running(url, clock) as app:
            for _ in range(throttle.ACCOUNT_FROM_SOURCE.attempts):
                assert (await attempt(app, "192.0.2.10", "nobody", "guess")).status_code == 401  # unknown names too
            clock.move_to(START + timedelta(minutes=5))
            refused = await attempt(app, "192.0.2.10", "nobody", "guess")
            assert refused.status_code == 429
            left = throttle.ACCOUNT_FROM_SOURCE.window - timedelta(minutes=5)
            assert f"Too many failed attempts: try again in {int(left.total_seconds())} seconds." in refused.text
            clock.move_to(START + throttle.ACCOUNT_FROM_SOURCE.window)  # the window ended: a new one starts
            assert (await attempt(app, "192.0.2.10", "nobody", "guess")).status_code == 401

    asyncio.run(go())


def test_rows_of_ended_windows_are_deleted(db: Engine) -> None:
    url, clock = with_users(db), VirtualClock(START)

    async def go() -> None:
        async with running(url, clock) as app:
            for n in range(4):
                await attempt(app, f"198.51.100.{n}", f"name{n}", "guess")
            assert len(keys_in(db)) == 4 * 2 + 4  # per address and per pair, and strangers per name
            longest = max(limit.window for limit in (throttle.SOURCE, throttle.ACCOUNT_FROM_SOURCE,
                                                     throttle.ACCOUNT_FROM_STRANGERS, throttle.DEVICE))
            clock.move_to(START + longest)
            await attempt(app, "203.0.113.1", "late", "guess")
            assert keys_in(db) == {key for key, _ in throttle.keys("late", "203.0.113.1", None)}

    asyncio.run(go())


# ------------------------------------------------------------------ the parts, directly


def test_a_device_cookie_is_trusted_only_for_its_user_until_it_expires_or_the_password_changes() -> None:
    now = START
    marketer = users.User(1, USERNAME, hashed(PASSWORD), True)
    bob = users.User(2, OTHER, hashed(OTHER_PASSWORD), False)
    cookie = throttle.new_device_cookie(marketer, now)
    device = throttle.trusted_device(cookie, marketer, now)
    assert device is not None and device == cookie.split(".")[2]
    assert throttle.trusted_device(throttle.new_device_cookie(marketer, now), marketer, now) != device  # per browser
    assert throttle.trusted_device(cookie, bob, now) is None
    assert throttle.trusted_device(cookie, None, now) is None
    assert throttle.trusted_device(cookie, marketer, now + throttle.DEVICE_LIFETIME) is None
    changed = users.User(1, USERNAME, hash_password("a new password"), True)
    assert throttle.trusted_device(cookie, changed, now) is None
    for broken in ("", "a.b.c", cookie + ".x", cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), "é.é.é.é"):
        assert throttle.trusted_device(broken, marketer, now) is None, broken


def source_of(host: str | None) -> str:
    scope: dict[str, object] = {"type": "http", "client": (host, 1) if host is not None else None, "headers": []}
    return throttle.source(Request(scope))


def test_an_ipv6_block_counts_as_one_address() -> None:
    assert source_of("2001:db8:1:2::1") == source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:192.0.2.1") == source_of("192.0.2.1") == "192.0.2.1"
    assert source_of(None) == "?"


def test_keys_are_small_whatever_name_is_posted() -> None:
    names = [key for key, _ in throttle.keys("A" * 10_000, "192.0.2.1", None)]
    assert all(len(key) < 120 for key in names)
    assert throttle.keys("Admin", "192.0.2.1", None) == throttle.keys("admin", "192.0.2.1", None)
    assert throttle.keys("admin", "192.0.2.1", "dev") == [("device:dev", throttle.DEVICE)]
