"""The side panels' choices for goals that end the run, schedule zones and calendar waits:
a journey read into the form fills the choice back, and the submitted form writes the DSL
for it, both in `forms` directly and through the builder's routes."""

from __future__ import annotations

import html
import re

import pytest

from builder_ui import forms
from dsl import model as m
from dsl.formatter import format_journey
from dsl.parser import parse

from .conftest import Builder

DAY = 86_400

JOURNEY = """journey "Choices"
  trigger schedule "30 9 * * *"
  trigger schedule "0 3 * * *" in journey zone
  trigger schedule "0 8 * * *" in user zone
  goal "bought" on event "purchase" within 14d then exit
  goal "spent" when user.total_spend >= 100 within 7d

  @later wait 2 days
  @exact wait 2d
"""


def settings_text(journey: m.Journey, changes: dict[str, str]) -> str:
    """The journey's text after applying the settings form as read, with `changes` made."""
    edited, errors = forms.settings_from_fields(journey, forms.settings_fields(journey) | changes)
    assert errors == [] and edited is not None
    return format_journey(edited)


def wait_step(fields: dict[str, str], old: m.Step | None = None) -> m.Step:
    step, errors = forms.step_from_fields(old or m.Wait(DAY, label="w"), {"label": "w", "mode": "for"} | fields)
    assert errors == [] and step is not None
    return step


# --------------------------------------------------------------------------- reading a journey into the forms


def test_the_settings_form_reads_the_goal_ends_and_schedule_zones_back() -> None:
    values = forms.settings_fields(parse(JOURNEY))
    assert [values[f"trigger_zone_{i}"] for i in range(3)] == ["", "journey", "user"]
    assert [values[f"goal_end_{i}"] for i in range(2)] == ["exit", ""]


def test_the_wait_form_reads_calendar_and_exact_waits_back() -> None:
    later, exact = parse(JOURNEY).steps
    assert forms.step_fields(later).items() >= {"mode": "for", "duration": "2d", "count": "calendar"}.items()
    assert forms.step_fields(exact).items() >= {"mode": "for", "duration": "2d", "count": "exact"}.items()


def test_applying_the_settings_form_unchanged_changes_no_text() -> None:
    assert settings_text(parse(JOURNEY), {}) == JOURNEY


# --------------------------------------------------------------------------- writing the choices


@pytest.mark.parametrize(("choice", "line"), [
    ("exit", 'goal "spent" when user.total_spend >= 100 within 7d then exit'),
    ("", 'goal "spent" when user.total_spend >= 100 within 7d'),
])
def test_the_goal_choice_writes_then_exit_or_not(choice: str, line: str) -> None:
    text = settings_text(parse(JOURNEY), {"goal_end_1": choice})
    assert f"\n  {line}\n" in text


def test_keep_going_takes_then_exit_off_an_event_goal() -> None:
    text = settings_text(parse(JOURNEY), {"goal_end_0": ""})
    assert '\n  goal "bought" on event "purchase" within 14d\n' in text


def test_a_new_goal_row_can_end_the_journey() -> None:
    journey = parse(JOURNEY)
    text = settings_text(journey, {"goal_name_2": "came back", "goal_kind_2": "event", "goal_event_2": "visit",
                                   "goal_where_2": "event.store == 1", "goal_within_2": "3d", "goal_end_2": "exit"})
    assert '\n  goal "came back" on event "visit" where event.store == 1 within 3d then exit\n' in text


@pytest.mark.parametrize(("choice", "line"), [
    ("journey", 'trigger schedule "30 9 * * *" in journey zone'),
    ("user", 'trigger schedule "30 9 * * *" in user zone'),
    ("", 'trigger schedule "30 9 * * *"'),
])
def test_the_send_at_choice_writes_the_schedule_zone(choice: str, line: str) -> None:
    text = settings_text(parse(JOURNEY), {"trigger_zone_0": choice})
    assert f"\n  {line}\n" in text


def test_each_persons_local_time_on_a_journey_zone_schedule_goes_back_to_the_default() -> None:
    text = settings_text(parse(JOURNEY), {"trigger_zone_1": ""})
    assert '\n  trigger schedule "0 3 * * *"\n' in text


@pytest.mark.parametrize(("duration", "expected"), [
    ("2d", m.Wait(2 * DAY, calendar=True, label="w")),
    ("2", m.Wait(2 * DAY, calendar=True, label="w")),
    ("1d", m.Wait(DAY, calendar=True, label="w")),
    ("1w", m.Wait(7 * DAY, calendar=True, label="w")),
    ("3 days", m.Wait(3 * DAY, calendar=True, label="w")),
    ("2 weeks", m.Wait(14 * DAY, calendar=True, label="w")),
])
def test_same_time_of_day_writes_a_calendar_wait(duration: str, expected: m.Wait) -> None:
    assert wait_step({"duration": duration, "count": "calendar"}) == expected


@pytest.mark.parametrize(("duration", "seconds"), [("2d", 2 * DAY), ("36h", 36 * 3600), ("1h30m", 5400)])
def test_exactly_this_long_writes_an_exact_wait(duration: str, seconds: int) -> None:
    step = wait_step({"duration": duration, "count": "exact"}, m.Wait(2 * DAY, calendar=True, label="w"))
    assert step == m.Wait(seconds, label="w")


def test_a_calendar_wait_of_hours_is_refused_on_the_duration_field() -> None:
    step, errors = forms.step_from_fields(m.Wait(DAY), {"mode": "for", "duration": "36h", "count": "calendar"})
    assert step is None
    assert [(e.field, e.message) for e in errors] == [("duration", "same time of day, N days later counts whole days")]


def test_a_calendar_wait_past_a_century_gets_the_parsers_message_on_its_field() -> None:
    step, errors = forms.step_from_fields(m.Wait(DAY), {"mode": "for", "duration": "9" * 30, "count": "calendar"})
    assert step is None
    assert [e.field for e in errors] == ["duration"]
    assert "longer than 36600 days" in errors[0].message


def test_wait_until_ignores_the_calendar_choice() -> None:
    step = wait_step({"mode": "until", "time": "10:00", "weekday": "", "count": "calendar"})
    assert step == m.WaitUntil(m.TimeOfDay(10, 0), label="w")


# --------------------------------------------------------------------------- over HTTP


def _create(b: Builder, source: str) -> str:
    response = b.client.post("/builder/journeys", data={"name": "Choices", "csrf_token": b.csrf()})
    assert response.status_code == 303
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    saved = b.htmx(f"/builder/journeys/{slug}/text", {"source": source}, b.csrf())
    assert saved.status_code == 200
    return slug


def _source(b: Builder, slug: str) -> str:
    page = b.client.get(f"/builder/journeys/{slug}").text
    found = re.search(r'<textarea[^>]*id="dsl-text"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found is not None
    return html.unescape(found.group(1)).lstrip("\n")


def _selected(panel: str, name: str) -> str:
    found = re.search(rf'<select name="{name}">(.*?)</select>', panel, re.DOTALL)
    assert found is not None, name
    chosen = re.search(r'<option value="([^"]*)" selected>', found.group(1))
    return chosen.group(1) if chosen else ""


def test_the_settings_panel_shows_the_choices_and_applying_them_writes_the_dsl(signed_in: Builder) -> None:
    slug = _create(signed_in, JOURNEY)
    panel = signed_in.client.get(f"/builder/journeys/{slug}/settings", headers={"HX-Request": "true"}).text
    assert "keep going" in panel and "end the journey for this person" in panel
    assert "each person&#39;s local time" in panel
    assert "the same moment for everyone (UTC time)" in panel  # no journey zone: the installation's
    assert [_selected(panel, f"goal_end_{i}") for i in range(2)] == ["exit", ""]
    assert [_selected(panel, f"trigger_zone_{i}") for i in range(3)] == ["", "journey", "user"]

    submitted = forms.settings_fields(parse(JOURNEY)) | {
        "goal_end_0": "", "goal_end_1": "exit", "trigger_zone_0": "journey", "trigger_zone_1": "",
        "rev": signed_in.rev(slug)}
    applied = signed_in.htmx(f"/builder/journeys/{slug}/settings", submitted, signed_in.csrf())
    assert applied.status_code == 200, applied.text
    source = _source(signed_in, slug)
    assert 'trigger schedule "30 9 * * *" in journey zone\n  trigger schedule "0 3 * * *"\n' in source
    assert 'goal "bought" on event "purchase" within 14d\n' in source
    assert 'goal "spent" when user.total_spend >= 100 within 7d then exit\n' in source


def test_the_wait_panel_shows_the_choice_and_applying_it_writes_the_dsl(signed_in: Builder) -> None:
    slug = _create(signed_in, JOURNEY)
    for path, expected in (("0", "calendar"), ("1", "exact")):
        panel = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": path},
                                     headers={"HX-Request": "true"}).text
        assert "exactly this long (hours)" in panel
        assert "same time of day, N days later (calendar days)" in panel
        assert _selected(panel, "count") == expected

    form = {"path": "1", "kind": "wait", "label": "exact", "mode": "for", "duration": "3d", "count": "calendar",
            "time": "09:00", "weekday": "", "rev": signed_in.rev(slug)}
    applied = signed_in.htmx(f"/builder/journeys/{slug}/step", form, signed_in.csrf())
    assert applied.status_code == 200, applied.text
    assert "\n  @later wait 2 days\n  @exact wait 3 days\n" in _source(signed_in, slug)

    back = form | {"path": "0", "label": "later", "duration": "2d", "count": "exact", "rev": signed_in.rev(slug)}
    assert signed_in.htmx(f"/builder/journeys/{slug}/step", back, signed_in.csrf()).status_code == 200
    assert "\n  @later wait 2d\n  @exact wait 3 days\n" in _source(signed_in, slug)


def test_the_step_check_puts_a_calendar_wait_of_hours_on_the_duration_field(signed_in: Builder) -> None:
    slug = _create(signed_in, JOURNEY)
    checked = signed_in.htmx(f"/builder/journeys/{slug}/step/check", {
        "path": "0", "kind": "wait", "label": "later", "mode": "for", "duration": "36h", "count": "calendar"},
        signed_in.csrf())
    assert 'data-field="duration"' in checked.text
    assert "counts whole days" in checked.text


# --------------------------------------------------------------------------- problems under the right field

SETTINGS = """journey "Fields"
  trigger event "purchase" where event.amount > 10
  trigger schedule "0 9 * * *"
  audience user.total_spend >= 0
  entry once every 30d
  exit on event "unsubscribe" where event.channel == "sms"
  goal "bought" on event "purchase" where event.amount > 0 within 14d
  quiet hours 21:00-09:00
  timezone "Asia/Shanghai"
  frequency cap 3 messages per 7d

  pass
"""
LINE_TALK = re.compile(r"\bline\b|\bcolumn\b")


@pytest.mark.parametrize(("field", "bad"), [
    ("trigger_where_0", "event.amount >"),
    ("trigger_where_0", "nobody.knows == 1"),
    ("trigger_cron_1", "every morning"),
    ("audience", "user.total_spend >"),
    ("entry_every", "3x"),
    ("entry_every", "0s"),
    ("exit_where_0", "== 2"),
    ("goal_within_0", "2 fortnights"),
    ("goal_within_0", "0s"),
    ("goal_where_0", "event.amount >"),
    ("quiet_start", "25:00"),
    ("quiet_end", "9am"),
    ("timezone", "Mars/Olympus"),
    ("cap_count_0", "three"),
    ("cap_count_0", "0"),
    ("cap_per_0", "weekly"),
    ("cap_per_0", "0s"),
])
def test_a_bad_setting_is_reported_on_its_own_field_without_line_talk(field: str, bad: str) -> None:
    journey = parse(SETTINGS)
    edited, errors = forms.settings_from_fields(journey, forms.settings_fields(journey) | {field: bad})
    assert edited is None
    assert errors and {e.field for e in errors} == {field}, errors
    assert not any(LINE_TALK.search(e.message + (e.hint or "")) for e in errors), errors


def test_a_goal_named_twice_points_at_the_second_name_and_says_row_not_line() -> None:
    journey = parse(SETTINGS)
    values = forms.settings_fields(journey) | {"goal_name_1": "bought", "goal_kind_1": "event",
                                               "goal_event_1": "purchase", "goal_within_1": "7d"}
    edited, errors = forms.settings_from_fields(journey, values)
    assert edited is None and [e.field for e in errors] == ["goal_name_1"]
    assert "another row" in (errors[0].hint or "") and not LINE_TALK.search(errors[0].hint or "")


def test_a_problem_the_flow_has_does_not_stop_the_settings() -> None:
    journey = parse('journey "J"\n  trigger event "signup"\n\n  send sms "Hi {{ nobody.name }}"\n')
    edited, errors = forms.settings_from_fields(journey, forms.settings_fields(journey) | {"name": "K"})
    assert errors == [] and edited is not None and edited.name == "K"


@pytest.mark.parametrize(("message", "shown"), [
    ("unexpected end of line; expected a duration", "unexpected the end; expected a duration"),
    ("expected a duration like 2d, the end of the line", "expected a duration like 2d, the end"),
    ("the first is on line 7", "the first is in another row"),
    ("bad value (line 3, column 9)", "bad value"),
    ("no such thing on line 12", "no such thing"),
])
def test_forms_messages_drop_lines_and_columns(message: str, shown: str) -> None:
    assert forms.plain(message) == shown


def test_a_step_fields_problem_is_plain_and_on_its_field() -> None:
    step, errors = forms.step_from_fields(m.WaitForEvent("purchase", None, DAY, None, None, label="w"),
                                          {"label": "w", "event": "purchase", "where": "event.amount >",
                                           "timeout": "2d"})
    assert step is None and [e.field for e in errors] == ["where"]
    assert not LINE_TALK.search(errors[0].message)
