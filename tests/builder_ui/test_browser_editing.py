"""Editing without losing work, in a real browser (Playwright driving Debian's Chromium against
a real server and SQLite file): undo and redo by the buttons and the keys (not while typing in
a field, where the field's own undo applies), an undo refused after another window saved, the
warning before unapplied form edits are dropped, and a new step opening its form with the
keyboard in it.

Without /usr/bin/chromium the tests skip, saying what to install; under CI=true they fail.
"""

from __future__ import annotations

import re

import pytest

from .conftest import sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
expect = sync_api.expect
Page = sync_api.Page


def new_journey(page: Page, name: str) -> None:
    sign_in(page)
    page.get_by_label("New journey").fill(name)
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".journey-name")).to_have_text(name)


def insert(page: Page, block: str, index: int, kind: str) -> None:
    """The "+" on an edge, then a step kind from the palette; waits for the new card."""
    rev = page.locator("#rev").get_attribute("value") or ""
    page.locator(f'.slot[data-block="{block}"][data-index="{index}"] > .plus').click()
    page.locator(f'.palette [data-kind="{kind}"]').click()
    expect(page.locator("#rev")).not_to_have_attribute("value", rev)


def text(page: Page) -> str:
    return page.locator("#dsl-text").input_value()


def test_undo_and_redo_by_buttons_and_keys_but_not_while_typing(page: Page) -> None:
    new_journey(page, "Undo me")
    undo, redo = page.locator("#undo"), page.locator("#redo")
    expect(undo).to_be_disabled()
    expect(redo).to_be_disabled()
    empty = text(page)

    insert(page, "", 0, "wait")
    # The new step's form opens, with the keyboard in its first field.
    expect(page.locator("#step-form h2")).to_contain_text("@wait_1")
    expect(page.locator('#step-form [name="label"]')).to_be_focused()
    with_wait = text(page)
    assert "@wait_1 wait" in with_wait
    expect(undo).to_be_enabled()

    # Ctrl+Z in a field is the field's own: the journey keeps its step.
    page.locator('#step-form [name="label"]').press("Control+z")
    page.locator('#step-form [name="label"]').press("ArrowRight")  # give a wrong undo time to show
    assert text(page) == with_wait

    undo.click()
    expect(page.locator("#dsl-text")).to_have_value(empty)
    expect(page.locator('.node[data-step-id="wait_1"]')).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("Undone.")
    expect(undo).to_be_disabled()
    expect(redo).to_be_enabled()

    page.locator("body").press("Control+Shift+z")
    expect(page.locator("#dsl-text")).to_have_value(with_wait)
    expect(page.locator('.node[data-step-id="wait_1"]')).to_be_visible()
    expect(redo).to_be_disabled()

    page.locator(".journey-name").click()  # out of any field
    page.keyboard.press("Meta+z")
    expect(page.locator("#dsl-text")).to_have_value(empty)

    # A new edit after an undo drops what could be redone.
    insert(page, "", 0, "tag")
    expect(redo).to_be_disabled()
    expect(undo).to_be_enabled()

    # The history is this tab's, and survives a reload.
    page.reload()
    expect(page.locator("#undo")).to_be_enabled()
    page.locator("#undo").click()
    expect(page.locator("#dsl-text")).to_have_value(empty)


def test_an_undo_after_another_window_saved_is_refused(page: Page) -> None:
    new_journey(page, "Two windows")
    insert(page, "", 0, "wait")
    other = page.context.new_page()
    other.goto(page.url)
    insert(other, "", 1, "tag")
    both = text(other)

    page.locator("#undo").click()
    expect(page.locator("#toast")).to_contain_text("changed in another window")
    expect(page.locator("#dsl-text")).to_have_value(both)  # the other window's work is kept
    expect(page.locator("#undo")).to_be_disabled()
    expect(page.locator("#redo")).to_be_disabled()
    other.close()


def test_unapplied_step_edits_ask_before_they_are_dropped(page: Page) -> None:
    new_journey(page, "Careful")
    insert(page, "", 0, "wait")
    insert(page, "", 1, "tag")
    dialog = page.locator("#unapplied")
    page.locator('.node[data-step-id="wait_1"]').click()
    expect(page.locator("#step-form h2")).to_contain_text("@wait_1")
    page.locator('#step-form [name="duration"]').fill("3d")

    # Keep editing: the typed value stays.
    page.locator('.node[data-step-id="tag_1"]').click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("You have changes to this step that are not applied")
    dialog.get_by_role("button", name="Keep editing").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#step-form h2")).to_contain_text("@wait_1")
    expect(page.locator('#step-form [name="duration"]')).to_have_value("3d")

    # Apply: saved, then the other step opens.
    page.locator('.node[data-step-id="tag_1"]').click()
    dialog.get_by_role("button", name="Apply").click()
    expect(page.locator("#step-form h2")).to_contain_text("@tag_1")
    assert "@wait_1 wait 3d" in text(page)

    # Discard: not saved, the settings open.
    page.locator('#step-form [name="tag"]').fill("dropped")
    page.get_by_role("button", name="Settings", exact=True).click()
    expect(dialog).to_contain_text("changes to this step")
    dialog.get_by_role("button", name="Discard").click()
    expect(page.locator("#settings-form")).to_be_visible()
    assert "dropped" not in text(page)

    # The settings are guarded too, and so is an undo.
    page.locator('#settings-form [name="name"]').fill("Careful, renamed")
    page.locator("#undo").click()
    expect(dialog).to_contain_text("changes to the settings")
    expect(dialog.get_by_role("button", name="Apply")).to_be_hidden()  # applying, then undoing it, is nothing
    dialog.get_by_role("button", name="Keep editing").click()
    expect(page.locator('#settings-form [name="name"]')).to_have_value("Careful, renamed")
    assert "@tag_1" in text(page)


def test_leaving_the_page_with_unapplied_edits_asks_first(page: Page) -> None:
    new_journey(page, "Leaving")
    insert(page, "", 0, "wait")
    asked: list[str] = []
    page.on("dialog", lambda d: asked.append(d.type))  # the fixture's handler accepts it
    page.locator('#step-form [name="duration"]').fill("5d")
    page.goto("/builder/")
    expect(page.get_by_role("heading", name="Journeys")).to_be_visible()
    assert asked == ["beforeunload"]


def test_a_clean_form_and_a_saved_one_leave_without_asking(page: Page) -> None:
    new_journey(page, "Quiet")
    insert(page, "", 0, "wait")
    insert(page, "", 1, "tag")
    page.locator('#step-form [name="tag"]').fill("kept")
    rev = page.locator("#rev").get_attribute("value") or ""
    page.locator("#apply-step").click()
    expect(page.locator("#rev")).not_to_have_attribute("value", rev)
    page.locator('.node[data-step-id="wait_1"]').click()  # applied: no question
    expect(page.locator("#step-form h2")).to_contain_text("@wait_1")
    expect(page.locator("#unapplied")).to_be_hidden()
    assert re.search(r'@tag_1 add tag "kept"', text(page))
