"""The message, update, webhook and template forms in a real browser, by clicks: a placeholder
menu that inserts at the cursor and offers only what the step can use, the message in plain
words, typed update values, body rows with a group and a list, and the template select. Each
ends in the DSL text the form wrote. The server serves the examples' catalog (conftest), so
the fields and templates offered are the examples' own."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Served, sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
expect = sync_api.expect


def open_journey(page: sync_api.Page, source: str) -> None:
    """A new journey with `source` as its text, typed into the DSL panel (the setup; the
    forms under test are then used by clicks)."""
    sign_in(page)
    page.get_by_label("New journey").fill("Steps")
    page.get_by_role("button", name="Create").click()
    page.locator("#dsl-text").fill(source)
    expect(page.locator("#problems")).to_be_visible()
    expect(page.locator(".node[data-step-id]").first).to_be_visible()


def open_step(page: sync_api.Page, step_id: str) -> sync_api.Locator:
    """The step's form, freshly loaded: the form already in the panel is marked, so that a
    form kept there after Apply is not mistaken for the new one."""
    page.evaluate("document.querySelector('#step-form')?.setAttribute('data-stale', '')")
    page.locator(f'.node[data-step-id="{step_id}"]').click()
    form = page.locator("#step-form:not([data-stale])")
    expect(form.locator("h2")).to_contain_text(f"@{step_id}")
    return form


def apply(page: sync_api.Page) -> None:
    rev = page.locator("#rev").get_attribute("value")
    page.locator("#apply-step").click()
    expect(page.locator("#rev")).not_to_have_attribute("value", rev or "")


MESSAGE = """journey "Steps"
  trigger event "signup"

  @hello send sms "Welcome"
  @trial issue coupon "LENS_TRIAL_STORE" as trial
  @invite send sms "x"
"""


def test_the_menu_inserts_placeholders_and_the_message_reads_in_plain_words(page: sync_api.Page, server: Served,
                                                                           artifacts: Path) -> None:
    open_journey(page, MESSAGE)
    form = open_step(page, "hello")
    menu = form.locator("select.placeholder-menu")
    expect(menu.locator('option[value="user.first_name"]')).to_have_count(1)
    expect(menu.locator('option[value="event.store_id"]')).to_have_count(1)  # the signup event's own
    expect(menu.locator('option[value="trial.code"]')).to_have_count(0)  # the coupon comes later

    form = open_step(page, "invite")
    text = form.locator('textarea[name="text"]')
    text.fill("【清瞳】")
    form.locator(".placeholder-default").fill("您好")
    menu.select_option("user.first_name")
    text.press("End")
    text.press_sequentially("，券码 ")
    form.locator(".placeholder-default").fill("")
    menu.select_option("trial.code")
    expect(text).to_have_value("【清瞳】{{ user.first_name | default('您好') }}，券码 {{ trial.code }}")
    words = page.locator("#preview .message-words")
    expect(words).to_have_text("【清瞳】[first name, or “您好”]，券码 [trial coupon code]")
    expect(page.locator("#preview .preview-text")).to_have_text("【清瞳】Lin，券码 SAMPLE-7Q2K")
    page.locator("#panel").screenshot(path=artifacts / "steps-01-message-placeholders.png")
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(
        MESSAGE.replace('"x"', '''"【清瞳】{{ user.first_name | default('您好') }}，券码 {{ trial.code }}"'''))

    form = open_step(page, "hello")
    form.locator('textarea[name="text"]').fill("Hi {{ user.frist_name }}")
    expect(page.locator('#step-errors [data-field="text"]')).to_contain_text("first name?")


UPDATES = """journey "Steps"
  trigger event "purchase"

  @tally update user.stage = "new"
"""


def test_an_update_is_made_of_a_field_an_operation_and_a_typed_value(page: sync_api.Page, server: Served) -> None:
    open_journey(page, UPDATES)
    form = open_step(page, "tally")
    expect(form.locator(".upd-value:visible")).to_have_value("new")
    form.locator(".upd-field").select_option("total_spend")
    form.locator(".upd-op").select_option("+=")
    form.locator(".upd-kind").select_option("event")
    form.locator(".upd-value:visible").select_option("amount")
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(UPDATES.replace('stage = "new"', "total_spend += event.amount"))

    form = open_step(page, "tally")
    form.locator(".upd-field").select_option("__other__")
    form.locator(".upd-field-other").fill("lens_budget")
    form.locator(".upd-op").select_option("=")
    form.locator(".upd-kind").select_option("number")
    form.locator(".upd-value:visible").fill("100")
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(UPDATES.replace('stage = "new"', "lens_budget = 100"))


WEBHOOK = """journey "Steps"
  trigger event "account_bound"

  @thanks call webhook "https://wechat-gateway.example.com/v1/template-messages"
"""


def fill_row(row: sync_api.Locator, key: str | None, kind: str, value: str) -> None:
    if key is not None:
        row.locator(".body-key").fill(key)
    row.locator("select.body-kind").select_option(kind)
    box = row.locator(".body-value:visible")
    if kind in ("user", "event", "bool", "result"):
        box.select_option(value)
    else:
        box.fill(value)


def test_a_webhook_body_is_built_from_rows_groups_and_lists(page: sync_api.Page, server: Served,
                                                            artifacts: Path) -> None:
    open_journey(page, WEBHOOK)
    form = open_step(page, "thanks")
    editor = form.locator(".body-editor")
    rows = editor.locator(".body-row")
    bottom = editor.locator(".body-buttons")
    bottom.locator(".body-add").click()
    fill_row(rows.nth(0), "openid", "user", "wechat_openid")
    bottom.locator(".body-add").click()
    fill_row(rows.nth(1), "template_id", "text", "bind_success")
    bottom.locator(".body-add-group").click()
    rows.nth(2).locator(".body-key").fill("data")
    rows.nth(2).locator(".body-add").click()
    fill_row(rows.nth(3), "name", "user", "first_name")
    rows.nth(2).locator(".body-add").click()
    fill_row(rows.nth(4), "points", "number", "100")
    bottom.locator(".body-add-list").click()
    rows.nth(5).locator(".body-key").fill("benefits")
    rows.nth(5).locator(".body-add").click()
    expect(rows.nth(6).locator(".body-key")).to_be_hidden()  # a list's items have no name
    fill_row(rows.nth(6), None, "text", "member_price")
    bottom.locator(".body-add").click()
    rows.nth(7).locator(".body-remove").click()
    expect(rows).to_have_count(7)
    page.locator("#panel").screenshot(path=artifacts / "steps-02-webhook-body.png")
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(WEBHOOK.replace(
        "template-messages\"", 'template-messages" with {"openid": user.wechat_openid, "template_id": "bind_success", '
        '"data": {"name": user.first_name, "points": 100}, "benefits": ["member_price"]}'))

    form = open_step(page, "thanks")  # read back into the same rows
    expect(form.locator(".body-row")).to_have_count(7)
    form.locator(".body-row").nth(2).locator(".body-remove").click()  # the group and what it holds
    expect(form.locator(".body-row")).to_have_count(4)
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(WEBHOOK.replace(
        "template-messages\"", 'template-messages" with {"openid": user.wechat_openid, "template_id": "bind_success", '
        '"benefits": ["member_price"]}'))


TEMPLATES = """journey "Steps"
  trigger event "signup"

  @intro send push template "retired_intro"
"""


def test_a_template_is_chosen_from_the_known_ones_and_an_unknown_one_stays_marked(page: sync_api.Page,
                                                                                server: Served) -> None:
    open_journey(page, TEMPLATES)
    form = open_step(page, "intro")
    choice = form.locator("select[name=template]")
    expect(choice.locator("option:checked")).to_have_text("retired_intro (not found)")
    choice.select_option("lens_intro")
    apply(page)
    expect(page.locator("#dsl-text")).to_have_value(TEMPLATES.replace("retired_intro", "lens_intro"))
