"""How a journey performs, in a real browser: Playwright driving Debian's Chromium against a
real server whose engine applies events sent through the real API.

A marketer publishes a journey; users sign up through the API and the step counts on the open
canvas change without a reload; purchases come in and the report shows them in its charts and
figures; the marketer publishes a second version and compares the two. Screenshots go to
$JOURNEYFLOW_ARTIFACTS (default: the test's tmp dir).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Served, sign_in
from .test_report import JOURNEY, SECOND, engine_server, send, write_key

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

USERS = 80
BUYERS = 24
REPORT_REFRESH_MS = 25_000  # the report redraws every 10 s; the engine needs a moment too


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    yield from engine_server(tmp_path)


def counts(page: sync_api.Page, step: str, figure: str) -> sync_api.Locator:
    return page.locator(f'.node [data-counts="{step}"] [data-figure="{figure}"]')


def type_text(page: sync_api.Page, text: str) -> None:
    rev = page.locator("#rev").get_attribute("value")
    page.locator("#dsl-text").fill(text)
    sync_api.expect(page.locator("#rev")).not_to_have_attribute("value", rev or "")


def test_step_counts_move_on_the_canvas_the_report_draws_them_and_versions_compare(
        page: sync_api.Page, server: Served, artifacts: Path) -> None:
    expect = sync_api.expect
    sign_in(page)
    page.get_by_label("New journey").fill("Lens offer")
    page.get_by_role("button", name="Create").click()
    type_text(page, JOURNEY)
    expect(page.locator('.node[data-step-id="rest"]')).to_be_visible()
    page.locator("#publish").click()
    page.locator("#publish-review #confirm-publish").click()
    expect(page.locator("#status .version")).to_contain_text("live v1")
    expect(page.locator("#live-summary")).to_contain_text("v1")
    expect(counts(page, "welcome", "entered")).to_have_text("0")

    # Users sign up through the API: the open canvas counts them, without a reload.
    key = write_key(server.database_url)
    users = [f"user-{i}" for i in range(USERS)]
    send(server.url, key, [(u, "signup") for u in users])
    expect(counts(page, "welcome", "entered")).to_have_text(str(USERS))
    expect(counts(page, "welcome", "left")).to_have_text(str(USERS))
    expect(counts(page, "rest", "waiting")).to_have_text(str(USERS))
    expect(page.locator('#live-summary [data-figure="in-journey"]')).to_have_text(str(USERS))
    title = page.locator('.node [data-counts="welcome"] .figures').get_attribute("title") or ""
    assert f"{USERS} moved on" in title and "0 exited the journey here" in title
    intro = int(counts(page, "intro", "entered").inner_text())
    assert 0 < intro < USERS  # the split sent users both ways
    page.screenshot(path=artifacts / "report-01-canvas-counts.png", full_page=True)

    page.get_by_role("link", name="Report").click()
    expect(page.locator("#total-entered")).to_have_text(str(USERS))
    expect(page.locator("#total-converted")).to_have_text("0")
    send(server.url, key, [(u, "purchase") for u in users[:BUYERS]])
    # The purchases are applied in the engine's own time; the open report redraws itself.
    expect(page.locator("#total-converted")).to_have_text(str(BUYERS), timeout=REPORT_REFRESH_MS)
    expect(page.locator("#over-time svg.chart")).to_be_visible()
    expect(page.locator("#funnel svg.chart rect.bar")).to_have_count(3)  # welcome, offer, rest
    welcome_bar = page.locator("#funnel svg.chart rect.bar").first.locator("title")
    expect(welcome_bar).to_have_text(f"welcome: {USERS} entered, 100.0% of journey entries")
    expect(page.locator('#splits [data-split="offer"] .verdict')).to_contain_text(re.compile(
        r"b converts .* than control|not enough data yet|b converts the same as control"))
    page.locator("#funnel svg.chart rect.bar").first.hover()
    page.screenshot(path=artifacts / "report-02-report.png", full_page=True)
    with page.expect_download() as download:
        page.locator("#csv-link").click()
    assert "section,bucket,step,arm,metric,value" in Path(download.value.path()).read_text()

    # A second version: reworded, a longer wait, a new step. Then the two side by side.
    page.go_back()
    page.goto(page.url.rsplit("/report", 1)[0])
    type_text(page, SECOND)  # the edit redraws the canvas; its counts come back at once, not at the next poll
    expect(counts(page, "welcome", "entered")).to_have_text(str(USERS), timeout=3_000)
    page.locator("#publish").click()
    page.locator("#publish-review #confirm-publish").click()
    expect(page.locator("#status .version")).to_contain_text("live v2")
    expect(page.locator("#live-summary")).to_contain_text("v1–v2")
    page.get_by_role("link", name="Versions").click()
    first = page.locator('tr[data-version="1"]')
    expect(first.locator("[data-running]")).to_have_text(str(USERS))
    expect(first).to_contain_text("marketer")
    expect(page.locator('tr[data-version="2"] .badge')).to_have_text("live")
    page.screenshot(path=artifacts / "report-03-versions.png", full_page=True)
    page.get_by_role("button", name="Compare").click()
    old, new = page.locator("#canvas-v1"), page.locator("#canvas-v2")
    expect(old.locator('[data-step-id="welcome"]')).to_have_attribute("data-mark", "changed")
    expect(new.locator('[data-step-id="bye"]')).to_have_attribute("data-mark", "added")
    expect(new.locator('[data-step-id="offer"]')).not_to_have_attribute("data-mark", re.compile("."))
    expect(page.locator(".text-diff td.line-added").first).to_contain_text("Welcome aboard")
    expect(old).to_contain_text(f"{USERS} users still on it")
    page.screenshot(path=artifacts / "report-04-compare.png", full_page=True)
