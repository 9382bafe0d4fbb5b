"""The builder's app on a fresh SQLite file with one user, served by a real uvicorn on
loopback (in a thread of the test process), and an httpx client that signs in like a browser.

Starlette's TestClient would do for routes, but it trips this suite's `filterwarnings=error`
on an anyio deprecation; a real server also exercises cookies as a browser gets them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.settings import Settings
from builder_ui.passwords import hash_password
from engine.clock import SystemClock
from storage import connect, migrate, users
from tests.api.conftest import serve_in_thread

USERNAME, PASSWORD = "marketer", "correct horse battery staple"
HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REV = re.compile(r'id="rev" name="rev" value="([^"]+)"')


def make_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    db = connect(url)
    migrate(db)
    with db.begin() as conn:
        users.create_user(conn, USERNAME, hash_password(PASSWORD), True, SystemClock().now())
    db.dispose()
    return url


@dataclass
class Served:
    url: str
    database_url: str


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    database_url = make_database(tmp_path / "builder.db")
    running, thread, url = serve_in_thread(Settings(database_url=database_url))
    try:
        yield Served(url, database_url)
    finally:
        running.should_exit = True
        thread.join()


@dataclass
class Builder:
    client: httpx.Client
    database_url: str

    def csrf(self, path: str = "/builder/") -> str:
        found = HIDDEN_CSRF.search(self.client.get(path).text)
        assert found is not None, "no CSRF token on the page"
        return found.group(1)

    def login(self, username: str = USERNAME, password: str = PASSWORD) -> httpx.Response:
        token = HIDDEN_CSRF.search(self.client.get("/builder/login").text)
        assert token is not None
        return self.client.post("/builder/login", data={"username": username, "password": password,
                                                       "csrf_token": token.group(1), "next": "/builder/"})

    def htmx(self, path: str, data: dict[str, str], csrf: str | None = None) -> httpx.Response:
        headers = {"HX-Request": "true", **({"X-CSRF-Token": csrf} if csrf else {})}
        return self.client.post(path, data=data, headers=headers)

    def rev(self, slug: str) -> str:
        found = REV.search(self.client.get(f"/builder/journeys/{slug}").text)
        assert found is not None
        return found.group(1)


@pytest.fixture
def builder(server: Served) -> Iterator[Builder]:
    with httpx.Client(base_url=server.url) as client:
        yield Builder(client, server.database_url)


@pytest.fixture
def signed_in(builder: Builder) -> Builder:
    assert builder.login().status_code == 303
    return builder
