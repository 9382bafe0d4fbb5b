"""The simulation panel in a real browser: Playwright driving Debian's Chromium against a
real server.

A marketer pastes the lens cross-sell journey, simulates a customer who buys care solution
late in the evening, looks at lenses and then buys them: the path is numbered on the canvas,
the push held back by quiet hours and the coupon push are shown as they would be sent. The
scenario is saved; an edit to the push text reruns it and shows the difference, which is
accepted. Screenshots go to $JOURNEYFLOW_ARTIFACTS (default: the test's tmp dir).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from storage import connect
from storage.tables import identities, profiles

from .conftest import Served, sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

ROOT = Path(__file__).parents[2]
LENS = (ROOT / "examples/journeys/lens_care_buyers_to_lenses.journey").read_text(encoding="utf-8")
EVENTS = ("+0m purchase category=care_solution amount=58\n"
          "+2d12h product_viewed category=lens\n"
          "+3d purchase category=lens\n")
TALL = {"width": 1440, "height": 1800}
PATH = ["tag_interest", "settle", "intro", "looked", "tag_lens_interest", "first_order_coupon", "coupon_push"]


def test_a_marketer_simulates_the_lens_cross_sell_and_sees_a_change(page: sync_api.Page, artifacts: Path,
                                                                    server: Served) -> None:
    expect = sync_api.expect
    sign_in(page)
    page.get_by_label("New journey").fill("Lens cross-sell")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".journey-name")).to_have_text("Lens cross-sell")
    page.locator("#dsl-text").fill(LENS)
    expect(page.locator('.node[data-step-id="coupon_push"]')).to_be_visible()

    # A ready scenario read off the journey fills the events; then the marketer writes their own.
    form = page.locator("#sim-form")
    form.get_by_label("Ready scenario").select_option("wait:looked")
    expect(form.get_by_label("Events")).to_have_value(re.compile(r"\+2d1h product_viewed category=lens"))
    form.get_by_label("User id").fill("u-100")
    form.get_by_label("Traits").fill("first_name = 小林\npush_token = tok-100\n")
    form.get_by_label("Start").fill("2026-06-01 22:00")
    form.get_by_label("Events").fill(EVENTS)
    form.get_by_role("button", name="Run simulation").click()

    result = page.locator("#sim-result .sim-outcome")
    expect(result).to_be_visible()
    for number, step in enumerate(PATH, start=1):
        node = page.locator(f'.step[data-step-id="{step}"] > .node')
        expect(node).to_have_class(re.compile("sim-visited"))
        expect(node).to_have_attribute("data-sim-order", str(number))
    expect(page.locator('.node[data-step-id="intro_reminder"]')).not_to_have_class(re.compile("sim-visited"))
    path = result.locator(".sim-path")
    expect(path).to_contain_text("deferred by quiet hours 21:00-09:00 to 2026-06-04 09:00")
    expect(path).to_contain_text("converted: goal “bought lenses” reached")
    messages = result.locator(".sim-message")
    expect(messages).to_have_count(3)
    expect(messages.nth(0)).to_contain_text("2026-06-04 09:00")
    expect(messages.nth(0)).to_contain_text("template lens_intro")
    expect(messages.nth(1).locator(".code")).to_have_text("LENS_FIRST_ORDER-0001")
    expect(messages.nth(2).locator(".sim-text")).to_have_text(
        "小林，送你一张隐形眼镜首单券，下单时输入 LENS_FIRST_ORDER-0001 立减 30 元，7 天内有效。")
    page.set_viewport_size(TALL)  # the canvas and the panel's result side by side
    result.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "sim-01-path-and-messages.png")

    form.get_by_label("Save as scenario").fill("care at night, then lenses")
    form.get_by_role("button", name="Save").click()
    scenario = page.locator('.scenario[data-scenario="care at night, then lenses"]')
    expect(scenario.locator(".badge")).to_have_text("same outcome")

    # An edit to the push text: the shown result and the saved scenario rerun on their own.
    page.locator("#dsl-text").fill(LENS.replace("立减 30 元，7 天内有效", "立减 50 元，3 天内有效"))
    expect(scenario.locator(".badge")).to_have_text("outcome changed")
    expect(scenario.locator(".sim-diff .ddel")).to_contain_text("立减 30 元，7 天内有效")
    expect(scenario.locator(".sim-diff .dadd")).to_contain_text("立减 50 元，3 天内有效")
    expect(messages.nth(2).locator(".sim-text")).to_contain_text("立减 50 元")
    expect(page.locator('.step[data-step-id="coupon_push"] > .node')).to_have_attribute("data-sim-order", "7")
    scenario.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "sim-02-scenario-difference.png")

    scenario.get_by_role("button", name="Accept the new outcome of care at night, then lenses").click()
    expect(scenario.locator(".badge")).to_have_text("same outcome")

    # Rerunning a saved scenario puts it back in the form.
    form.get_by_label("Events").fill("+0m purchase category=lens\n")
    run = scenario.get_by_role("button", name="Run care at night, then lenses")
    run.click()
    expect(page.locator("#sim-form").get_by_label("Events")).to_have_value(EVENTS)
    expect(page.locator('.step[data-step-id="coupon_push"] > .node')).to_have_attribute("data-sim-order", "7")
    expect(run).to_have_text("Run")

    # A real customer as the sample: found by phone, traits and zone taken, history not.
    add_customer(server.database_url)
    page.locator(".sim-load summary").click()
    page.locator("#sim-id-kind").select_option("phone")
    page.get_by_label("Identity value").fill("13800000200")
    page.locator("#sim-load").click()
    expect(page.locator("#sim-loaded")).to_have_text("Loaded the profile of phone 13800000200.")
    expect(page.locator("#sim-form").get_by_label("User id")).to_have_value("u-200")
    expect(page.locator("#sim-form").get_by_label("Time zone")).to_have_value("Europe/Paris")
    page.locator("#sim-form").get_by_role("button", name="Run simulation").click()
    expect(page.locator("#sim-result")).to_contain_text("Times in Europe/Paris")
    expect(messages.nth(2).locator(".sim-text")).to_contain_text("Wei，")


def add_customer(database_url: str) -> None:
    db = connect(database_url)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    with db.begin() as conn:
        profile_id = conn.execute(insert(profiles).values(
            traits={"first_name": "Wei", "push_token": "tok-200"}, tags=["member"], timezone="Europe/Paris",
            created_at=now, updated_at=now).returning(profiles.c.id)).scalar_one()
        conn.execute(insert(identities), [{"kind": "user_id", "value": "u-200", "profile_id": profile_id},
                                          {"kind": "phone", "value": "13800000200", "profile_id": profile_id}])
    db.dispose()


AB = (ROOT / "examples/journeys/ab_message_test.journey").read_text(encoding="utf-8")


def test_a_marketer_sends_the_simulated_person_down_the_split_branch_they_pick(page: sync_api.Page) -> None:
    expect = sync_api.expect
    sign_in(page)
    page.get_by_label("New journey").fill("A/B: first-order offer")
    page.get_by_role("button", name="Create").click()
    page.locator("#dsl-text").fill(AB)
    expect(page.locator('.node[data-step-id="free_shipping_push"]')).to_be_visible()

    form = page.locator("#sim-form")
    branch = form.get_by_label("first-order offer")
    expect(branch).to_have_value("")  # as assigned, as live
    form.get_by_label("Traits").fill("first_name = Lin\npush_token = tok-1\n")
    form.get_by_label("Events").fill("+0m signup\n")
    choices = (("Control · 10% (arm_control)", None, None),
               ("B · 45% (arm_free_shipping)", "template free_shipping_offer", "free_shipping_push"),
               ("A · 45% (arm_coupon)", "FIRST_ORDER_20-0001", "coupon"))
    for choice, shown, visited in choices:
        branch.select_option(label=choice)
        form.get_by_role("button", name="Run simulation").click()
        arm = choice.split("(")[1].rstrip(")")
        expect(page.locator("#sim-result .sim-path")).to_contain_text(f"took arm offer_test.{arm}")
        messages = page.locator("#sim-result .sim-message")
        if shown is None:
            expect(messages).to_have_count(0)
        else:
            expect(messages.first).to_contain_text(shown)
            expect(page.locator(f'.step[data-step-id="{visited}"] > .node')).to_have_class(re.compile("sim-visited"))

    # The choice stays when the journey changes and the panel follows it.
    page.locator("#dsl-text").fill(AB.replace("首单立减 20 元", "首单立减 25 元"))
    expect(page.locator("#sim-result")).to_contain_text("首单立减 25 元")  # rerun down the chosen branch
    expect(form.get_by_label("first-order offer")).to_have_value("0")
