"""The builder in a real browser: Playwright driving Debian's Chromium against a real server.

A marketer signs in, builds the lens cross-sell journey (a split and a wait-for-event) by
clicks, drags and typing only, reads the DSL it made, publishes it and sees it live in the
list; then edits the text and watches the canvas follow, and breaks it and sees the error on
the right step. Screenshots of the main screens go to $JOURNEYFLOW_ARTIFACTS (default: the
test's tmp dir).

Without /usr/bin/chromium the tests skip, saying what to install; under CI=true they fail.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from engine.clock import SystemClock
from storage import connect, coupons

from .conftest import Served, sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

EXPECTED = """journey "Lens cross-sell"
  trigger event "purchase" where event.category == "care_solution"
  goal "bought lenses" on event "purchase" where event.category == "lens" within 14d
  quiet hours 21:00-09:00

  @wait_1 wait 2d
  @split_1 split "offer test":
    50%:
      @push_1 send push template "lens_intro"
    50%:
      @coupon_1 issue coupon "LENS_TRIAL" as trial
      @sms_1 send sms "Try lenses free with code {{ trial.code }}"
  @wait_for_1 wait for event "purchase" where event.category == "lens" up to 7d:
    received:
      @tag_1 add tag "lens_buyer"
    timeout:
      pass
"""


def insert(page: sync_api.Page, block: str, index: int, kind: str) -> None:
    """The "+" on an edge, then a step kind from the palette."""
    page.locator(f'.slot[data-block="{block}"][data-index="{index}"] > .plus').click()
    page.locator(f'.palette [data-kind="{kind}"]').click()


def edit(page: sync_api.Page, step_id: str, values: dict[str, str], selects: dict[str, str] | None = None) -> None:
    """Open a step's panel, fill its fields, apply, and wait for the text to be saved."""
    page.locator(f'.step > .node[data-step-id="{step_id}"]').click()
    form = page.locator("#step-form")
    sync_api.expect(form.locator("h2")).to_contain_text(f"@{step_id}")
    for name, value in (selects or {}).items():
        form.locator(f'select[name="{name}"]').select_option(value)
    for name, value in values.items():
        as_text(form, name)
        form.locator(f'[name="{name}"]').fill(value)
    rev = page.locator("#rev").get_attribute("value")
    form.locator("#apply-step").click()
    sync_api.expect(page.locator("#rev")).not_to_have_attribute("value", rev or "")


def as_text(scope: sync_api.Locator, name: str) -> None:
    """A condition editor (rows by default) switched to text, to type the condition in the
    journey language; nothing for other fields."""
    editor = scope.locator(f'.cond-editor[data-name="{name}"]')
    if editor.count():
        editor.locator(".cond-as-text").click()
        sync_api.expect(editor.locator("input.cond-text")).to_be_visible()


def stock_pool(database_url: str, name: str, codes: int) -> None:
    db = connect(database_url)
    try:
        with db.begin() as conn:
            coupons.create_pool(conn, name, SystemClock().now())
            coupons.import_csv(conn, name, (f"{name}-{i}\n" for i in range(codes)))
    finally:
        db.dispose()


def dsl(page: sync_api.Page) -> str:
    return page.locator("#dsl-text").input_value()


def test_a_marketer_builds_publishes_and_edits_the_lens_cross_sell(page: sync_api.Page, server: Served,
                                                                   artifacts: Path) -> None:
    expect = sync_api.expect
    stock_pool(server.database_url, "LENS_TRIAL", 5)  # the coupon step picks it from the pools that exist
    page.goto("/builder/")
    expect(page).to_have_url(re.compile(r"/builder/login"))
    page.screenshot(path=artifacts / "01-login.png")
    sign_in(page)
    expect(page.get_by_role("heading", name="Journeys")).to_be_visible()

    page.get_by_label("New journey").fill("Lens cross-sell")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".journey-name")).to_have_text("Lens cross-sell")

    # Settings: trigger, goal, quiet hours.
    page.get_by_role("button", name="Settings", exact=True).click()
    settings = page.locator("#settings-form")
    settings.locator('[name="trigger_event_0"]').fill("purchase")
    as_text(settings, "trigger_where_0")
    settings.locator('[name="trigger_where_0"]').fill('event.category == "care_solution"')
    settings.locator('[name="goal_name_0"]').fill("bought lenses")
    settings.locator('[name="goal_event_0"]').fill("purchase")
    as_text(settings, "goal_where_0")
    settings.locator('[name="goal_where_0"]').fill('event.category == "lens"')
    settings.locator('[name="goal_within_0"]').fill("14d")
    settings.locator('[name="quiet_start"]').fill("21:00")
    settings.locator('[name="quiet_end"]').fill("09:00")
    settings.locator("#apply-settings").click()
    expect(page.locator("#dsl-text")).to_have_value(re.compile("quiet hours 21:00-09:00"))

    # A wait, inserted with the keyboard: "+" then Enter on the palette's first step kind.
    page.locator('.slot[data-block=""][data-index="0"] > .plus').focus()
    page.keyboard.press("Enter")
    expect(page.locator('.palette [data-kind="wait"]')).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator('.node[data-step-id="wait_1"]')).to_be_visible()
    edit(page, "wait_1", {"duration": "2d"})

    # The split, dragged from the palette onto the edge after the wait.
    page.locator('.palette [data-kind="split"]').drag_to(page.locator('.slot[data-block=""][data-index="1"]'))
    expect(page.locator('.node[data-step-id="split_1"]')).to_be_visible()
    edit(page, "split_1", {"name": "offer test"})
    insert(page, "1.0", 0, "push")
    edit(page, "push_1", {}, selects={"content": "template", "template": "lens_intro"})
    insert(page, "1.1", 0, "coupon")
    edit(page, "coupon_1", {"result": "trial"}, selects={"pool": "LENS_TRIAL"})
    insert(page, "1.1", 1, "sms")
    page.locator('.node[data-step-id="sms_1"]').click()
    page.locator('#step-form [name="text"]').fill("Try lenses free with code {{ trial.code }}")
    expect(page.locator("#preview .preview-text")).to_have_text("Try lenses free with code SAMPLE-7Q2K")
    page.screenshot(path=artifacts / "02-step-panel-preview.png")
    rev = page.locator("#rev").get_attribute("value")
    page.locator("#apply-step").click()
    expect(page.locator("#rev")).not_to_have_attribute("value", rev or "")

    # The wait for event, with a tag when the purchase comes.
    insert(page, "", 2, "wait_for_event")
    edit(page, "wait_for_1", {"event": "purchase", "where": 'event.category == "lens"', "timeout": "7d"})
    insert(page, "2.0", 0, "tag")
    edit(page, "tag_1", {"tag": "lens_buyer"})

    expect(page.locator("#dsl-text")).to_have_value(EXPECTED)
    expect(page.locator("#problems")).to_contain_text("No problems")
    page.screenshot(path=artifacts / "03-canvas.png", full_page=True)

    page.locator("#publish").click()
    expect(page.locator("#publish-review .review-problem")).to_have_count(0)
    page.locator("#confirm-publish").click()
    expect(page.locator("#status .badge")).to_have_text("live")
    expect(page.locator("#status .version")).to_contain_text("live v1")

    page.goto("/builder/")
    row = page.locator('tr[data-slug="lens-cross-sell"]')
    expect(row.locator(".badge")).to_have_text("live")
    expect(row.locator(".version")).to_have_text("v1")
    page.screenshot(path=artifacts / "04-journey-list.png")

    # The text drives the canvas: a new wait, then an error that lands on its step.
    row.get_by_role("link").click()
    area = page.locator("#dsl-text")
    area.fill(EXPECTED.replace("@wait_1 wait 2d", "@wait_1 wait 3d"))
    expect(page.locator('.node[data-step-id="wait_1"] .sentence')).to_have_text("Wait 3 days")
    expect(page.locator('.node[data-step-id="wait_1"] .summary')).to_have_text("wait 3d")  # the DSL, small
    area.fill(EXPECTED.replace("{{ trial.code }}", "{{ trail.code }}"))
    broken = page.locator('.step[data-step-id="sms_1"]')
    expect(broken).to_have_class(re.compile("has-problem"))
    expect(broken.locator(".problem-text").first).to_contain_text("unknown name 'trail'")
    expect(page.locator("#problems")).to_contain_text("line 12")
    area.fill(EXPECTED.replace("@wait_1 wait 2d", "@wait_1 wait 2 dayz"))
    expect(page.locator('.step[data-step-id="wait_1"]')).to_have_class(re.compile("broken"))
    expect(page.locator('.step[data-step-id="wait_1"] .problem-text')).to_contain_text("does not read")
    expect(page.locator('.step[data-step-id="wait_1"] .problem-text')).not_to_contain_text("line")
    expect(page.locator('.node[data-step-id="tag_1"]')).to_be_visible()  # the rest is still drawn
    page.screenshot(path=artifacts / "05-syntax-error-on-step.png", full_page=True)
    page.locator("#publish").click()
    expect(page.locator("#publish-review .review-problem").last).to_contain_text("text does not read")
    expect(page.locator("#confirm-publish")).to_be_disabled()


def test_wrong_passwords_are_refused_and_changes_need_the_csrf_token(page: sync_api.Page, server: Served) -> None:
    sign_in(page, password="wrong")
    sync_api.expect(page.locator(".error")).to_contain_text("do not match")
    sign_in(page)
    sync_api.expect(page.get_by_role("heading", name="Journeys")).to_be_visible()
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = httpx.post(f"{server.url}/builder/journeys", data={"name": "Forged"}, cookies=cookies)
    assert refused.status_code == 403
    page.reload()
    assert "Forged" not in page.content()
