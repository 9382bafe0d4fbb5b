"""The builder's app on a fresh SQLite file with one user, served by a real uvicorn on
loopback (in a thread of the test process), and an httpx client that signs in like a browser.

Starlette's TestClient would do for routes, but it trips this suite's `filterwarnings=error`
on an anyio deprecation; a real server also exercises cookies as a browser gets them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from api.settings import Settings
from builder_ui.passwords import hash_password
from engine.clock import SystemClock
from journeyflow.cli import load_catalog
from storage import connect, migrate, users
from tests.api.conftest import serving

if TYPE_CHECKING:
    from playwright.sync_api import Page

USERNAME, PASSWORD = "marketer", "correct horse battery staple"
CHROMIUM = Path("/usr/bin/chromium")
EXAMPLES_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "journeys" / "catalog.toml"
TIMEOUT_MS = 15_000  # for one htmx round trip to show on the page
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
    catalog = load_catalog(EXAMPLES_CATALOG)  # the fields and types the condition editor offers
    with serving(Settings(database_url=database_url, catalog=catalog)) as url:
        yield Served(url, database_url)


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


# ------------------------------------------------------------------ a real browser (Playwright)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium: without it the browser tests skip, saying what to install; under
    CI=true they fail."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $JOURNEYFLOW_ARTIFACTS, else the test's tmp dir."""
    folder = Path(os.environ.get("JOURNEYFLOW_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(chromium: Path, server: Served) -> Iterator[Page]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        context = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        # The builder's Content-Security-Policy (api/security_headers.py) allows only its own
        # scripts: anything it blocks is a broken page, so every browser test fails on it.
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text else None)
        try:
            yield page
        finally:
            context.close()
            browser.close()
        assert not refused, f"the page broke its Content-Security-Policy: {refused}"


def sign_in(page: Page, password: str = PASSWORD) -> None:
    page.goto("/builder/")
    page.get_by_label("User name").fill(USERNAME)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
