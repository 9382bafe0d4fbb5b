"""The condition editor, for real: over HTTP (the editor's route redraws rows, the panels read
the rows as DSL) and in Chromium (a marketer builds conditions by clicks only and sees the
DSL they make). The server is the suite's real uvicorn on a real SQLite file, with the
examples' catalog for the fields and their types."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Builder, sign_in

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

ROW = re.compile(r'class="cond-row[ "]')


def create(b: Builder, name: str) -> str:
    response = b.client.post("/builder/journeys", data={"name": name, "csrf_token": b.csrf()})
    assert response.status_code == 303
    return response.headers["location"].rsplit("/", 1)[-1]


def test_the_editor_route_adds_rows_and_switches_to_text(signed_in: Builder) -> None:
    slug = create(signed_in, "Rows")
    csrf = signed_in.csrf()
    rows = {"audience~mode": "rows", "audience~event": "purchase", "audience~r~kind": "group",
            "audience~r~join": "all", "audience~r.0~kind": "row", "audience~r.0~prev": "event.category",
            "audience~r.0~field": "event.category", "audience~r.0~op": "is", "audience~r.0~value": "lens"}
    added = signed_in.htmx(f"/builder/journeys/{slug}/condition",
                           {**rows, "cond_name": "audience", "cond_action": "add:r"}, csrf)
    assert added.status_code == 200
    assert len(ROW.findall(added.text)) == 2
    assert '<option value="lens" selected>lens</option>' in added.text  # the catalog's known values
    as_text = signed_in.htmx(f"/builder/journeys/{slug}/condition",
                             {**rows, "cond_name": "audience", "cond_action": "text"}, csrf)
    assert 'value="event.category == &#34;lens&#34;"' in as_text.text
    assert "cond-row" not in as_text.text
    unreadable = signed_in.htmx(f"/builder/journeys/{slug}/condition", {
        "audience~mode": "text", "audience": "user.points + 1 > 2", "cond_name": "audience", "cond_action": "rows"},
        csrf)
    assert "Edited as text" in unreadable.text and "cond-row" not in unreadable.text


def test_settings_applied_with_rows_save_their_dsl(signed_in: Builder) -> None:
    slug = create(signed_in, "Care promo")
    csrf = signed_in.csrf()
    panel = signed_in.client.get(f"/builder/journeys/{slug}/settings", headers={"HX-Request": "true"}).text
    assert 'class="cond-editor field wide" data-name="audience"' in panel
    form = {"rev": signed_in.rev(slug), "name": "Care promo", "trigger_count": "2", "trigger_kind_0": "event",
            "trigger_event_0": "purchase", "entry": "once", "exit_count": "1", "goal_count": "1", "cap_count": "1",
            "audience~mode": "rows", "audience~r~kind": "group", "audience~r~join": "any",
            "audience~r.0~kind": "row", "audience~r.0~field": "user.total_spend", "audience~r.0~op": "gte",
            "audience~r.0~value": "1000",
            "audience~r.1~kind": "row", "audience~r.1~field": "history", "audience~r.1~event": "purchase",
            "audience~r.1~wfield": "event.category", "audience~r.1~wop": "is", "audience~r.1~wvalue": "lens",
            "audience~r.1~window": "within", "audience~r.1~days": "365", "audience~r.1~count_op": "gte",
            "audience~r.1~count": "4"}
    saved = signed_in.htmx(f"/builder/journeys/{slug}/settings", form, csrf)
    assert saved.status_code == 200
    source = signed_in.client.get(f"/builder/journeys/{slug}").text
    assert ('audience user.total_spend &gt;= 1000 or count of &#34;purchase&#34; where event.category == '
            '&#34;lens&#34; within 365d &gt;= 4') in source


# --------------------------------------------------------------------------- in the browser


def editor(page: sync_api.Page, name: str) -> sync_api.Locator:
    return page.locator(f'.cond-editor[data-name="{name}"]')


def redrawn(cond: sync_api.Locator, act: Callable[[], object]) -> None:
    """Do something that redraws the editor (a field, a test or an event chosen, a button), and
    wait for the redraw to land: what is picked before then would be drawn over."""
    before = cond.get_attribute("data-drawn") or ""
    act()
    sync_api.expect(cond).not_to_have_attribute("data-drawn", before)


def choose(cond: sync_api.Locator, select: sync_api.Locator, value: str) -> None:
    redrawn(cond, lambda: select.select_option(value))


def test_a_marketer_builds_conditions_by_clicks_and_sees_the_dsl(page: sync_api.Page, artifacts: Path) -> None:
    expect = sync_api.expect
    sign_in(page)
    page.get_by_label("New journey").fill("Care promo")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".journey-name")).to_have_text("Care promo")
    page.get_by_role("button", name="Settings", exact=True).click()
    settings = page.locator("#settings-form")

    # The trigger: a purchase where the category is care solution.
    settings.locator('[name="trigger_event_0"]').fill("purchase")
    where = editor(page, "trigger_where_0")
    redrawn(where, lambda: settings.locator('[name="trigger_event_0"]').press("Tab"))  # follows the event typed
    field = where.locator(".cond-row").first.locator("select.cond-field")
    expect(field.locator('option[value="event.category"]')).to_have_count(1)
    choose(where, field, "event.category")
    expect(where.locator("select.cond-op")).to_have_value("is")
    where.locator("select.cond-value").select_option("care_solution")

    # The audience: never bought lenses, and not unsubscribed.
    audience = editor(page, "audience")
    first = audience.locator(".cond-row").first
    choose(audience, first.locator("select.cond-field").first, "history")
    choose(audience, audience.locator("select.cond-event"), "purchase")
    sub = audience.locator(".cond-event-where .cond-sub")
    choose(audience, sub.locator("select.cond-field"), "event.category")
    sub.locator("select.cond-value").select_option("lens")
    expect(audience.locator("select.cond-window")).to_have_value("ever")
    expect(audience.locator(".cond-days")).to_be_hidden()
    audience.locator("select.cond-count-op").select_option("none")
    expect(audience.locator(".cond-count")).to_be_hidden()
    redrawn(audience, audience.locator(".cond-add").click)
    second = audience.locator(".cond-row").nth(1)
    choose(audience, second.locator("select.cond-field"), "user.tags")
    choose(audience, second.locator("select.cond-op"), "has_not")
    second.locator("select.cond-value").select_option("unsubscribed")
    expect(audience.locator("select.cond-join").first).to_have_value("all")

    settings.screenshot(path=artifacts / "conditions-settings.png")
    settings.locator("#apply-settings").click()
    expect(page.locator("#dsl-text")).to_have_value(re.compile(
        r'trigger event "purchase" where event\.category == "care_solution"\n'
        r'  audience count of "purchase" where event\.category == "lens" ever == 0 and '
        r'"unsubscribed" not in user\.tags\n'))

    # Reopened, the settings show those rows again; as text, the same condition.
    page.reload()
    page.get_by_role("button", name="Settings", exact=True).click()
    audience = editor(page, "audience")
    expect(audience.locator("select.cond-event")).to_have_value("purchase")
    expect(audience.locator(".cond-row").nth(1).locator("select.cond-op")).to_have_value("has_not")
    redrawn(audience, audience.locator(".cond-as-text").click)
    expect(audience.locator("input.cond-text")).to_have_value(
        'count of "purchase" where event.category == "lens" ever == 0 and "unsubscribed" not in user.tags')


def test_rows_not_finished_are_refused_in_plain_words_and_shown_as_they_were(signed_in: Builder) -> None:
    slug = create(signed_in, "Unfinished")
    csrf = signed_in.csrf()
    form = {"rev": signed_in.rev(slug), "name": "Unfinished", "trigger_count": "1", "trigger_kind_0": "event",
            "trigger_event_0": "signup", "entry": "once", "exit_count": "1", "goal_count": "1", "cap_count": "1",
            "audience~mode": "rows", "audience~r~kind": "group", "audience~r~join": "all",
            "audience~r.0~kind": "row", "audience~r.0~field": "user.total_spend", "audience~r.0~op": "gte",
            "audience~r.0~value": ""}
    refused = signed_in.htmx(f"/builder/journeys/{slug}/settings", form, csrf)
    assert refused.status_code == 422
    assert "total spend: a number, such as 100" in refused.text
    assert "unexpected character" not in refused.text
    assert 'name="audience~r.0~op"' in refused.text  # still rows, not text
    assert "audience user.total_spend" not in signed_in.client.get(f"/builder/journeys/{slug}").text  # not saved


IF_STEP = ('journey "Channels"\n  trigger event "purchase"\n\n  @by_channel if event.channel == "store":\n'
           '    add tag "buys_in_store"\n  elif user.total_spend + 1 > 2:\n    pass\n')
IF_ROWS = {"path": "0", "kind": "condition", "label": "by_channel", "arms": "2",
           "condition_0~mode": "rows", "condition_0~r~kind": "group", "condition_0~r~join": "all",
           "condition_0~r.0~kind": "row", "condition_0~r.0~field": "event.channel",
           "condition_0~r.0~op": "is_not", "condition_0~r.0~value": "app",
           "condition_1~mode": "text", "condition_1": "user.total_spend + 1 > 2"}


def test_an_if_step_offers_the_trigger_event_s_properties_and_checks_its_rows(signed_in: Builder) -> None:
    slug = create(signed_in, "Channels")
    csrf = signed_in.csrf()
    assert signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": IF_STEP}, csrf).status_code == 200
    panel = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "0"},
                                 headers={"HX-Request": "true"}).text
    first, second = panel.split('data-name="condition_1"')
    assert '<option value="event.channel" selected>channel (event)</option>' in first
    assert '<option value="store" selected>store</option>' in first
    assert "Edited as text" in second and 'value="user.total_spend + 1 &gt; 2"' in second
    unfinished = signed_in.htmx(f"/builder/journeys/{slug}/step/check", {
        **IF_ROWS, "condition_0~r.0~op": "gte", "condition_0~r.0~field": "user.total_spend",
        "condition_0~r.0~prev": "user.total_spend", "condition_0~r.0~value": ""}, csrf)
    assert "total spend: a number, such as 100" in unfinished.text
    assert "unexpected" not in unfinished.text


def test_an_if_step_applied_with_rows_saves_its_condition(signed_in: Builder) -> None:
    slug = create(signed_in, "Channels")
    csrf = signed_in.csrf()
    signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": IF_STEP}, csrf)
    checked = signed_in.htmx(f"/builder/journeys/{slug}/step/check", IF_ROWS, csrf)
    assert "data-field" not in checked.text
    signed_in.htmx(f"/builder/journeys/{slug}/step", {**IF_ROWS, "rev": signed_in.rev(slug)}, csrf)
    assert '@by_channel if event.channel != &#34;app&#34;:' in signed_in.client.get(f"/builder/journeys/{slug}").text
