"""The simulation panel over HTTP against a real server: the form and its ready scenarios,
running the draft, refusing a broken text or bad input with every problem, loading a real
profile, and scenarios saved, rerun after an edit, shown as a difference and accepted."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

from builder_ui.sample import SimulationInput, messages_of
from builder_ui.split_choices import forced_arms, split_choices
from dsl import compile_source
from dsl import graph as g
from engine.splits import choose_arm, pick_arm
from journeyflow.simulate import SeedProfile, simulate
from storage import connect
from storage.tables import identities, profiles

from .conftest import Builder
from .test_routes import create

ROOT = Path(__file__).parents[2]
LENS = (ROOT / "examples/journeys/lens_care_buyers_to_lenses.journey").read_text(encoding="utf-8")
SCENARIO = {"user_id": "u-1", "traits": "first_name = 小林\npush_token = tok-1\n", "tags": "member", "timezone": "",
            "identities": "", "start": "2026-06-01 22:00",
            "events": "+0m purchase category=care_solution\n+2d12h product_viewed category=lens\n"
                      "+3d purchase category=lens\n"}


def lens_journey(b: Builder) -> tuple[str, str]:
    """A journey holding the lens cross-sell as its draft; (slug, CSRF token)."""
    slug = create(b)
    csrf = b.csrf(f"/builder/journeys/{slug}")
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": LENS}, csrf).status_code == 200
    return slug, csrf


def text(response: httpx.Response) -> str:
    """The response's text with tags dropped and entities read, for phrases split by markup."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_the_form_comes_with_a_sample_and_the_journeys_ready_scenarios(signed_in: Builder) -> None:
    slug, _ = lens_journey(signed_in)
    form = signed_in.client.get(f"/builder/journeys/{slug}/simulate", headers={"HX-Request": "true"})
    assert form.status_code == 200
    assert 'name="user_id" value="sample-user"' in form.text
    assert "+0m purchase category=care_solution" in form.text  # the first ready scenario
    assert "enters, then product_viewed arrives while at @looked" in html.unescape(form.text)
    ready = signed_in.client.get(f"/builder/journeys/{slug}/simulate/ready", params={"ready": "wait:looked"})
    assert "+2d1h product_viewed category=lens" in ready.text
    editor = signed_in.client.get(f"/builder/journeys/{slug}")
    assert "/static/simulation.js" in editor.text and 'id="sim-form-wrap"' in editor.text


def test_running_the_draft_shows_the_path_and_the_messages(signed_in: Builder) -> None:
    slug, csrf = lens_journey(signed_in)
    assert signed_in.htmx(f"/builder/journeys/{slug}/simulate", SCENARIO).status_code == 403  # no token
    result = signed_in.htmx(f"/builder/journeys/{slug}/simulate", SCENARIO, csrf)
    assert result.status_code == 200
    shown = text(result)
    assert "Times in Asia/Shanghai" in shown
    assert "3 2026-06-03 22:00 @intro send push deferred by quiet hours 21:00-09:00 to 2026-06-04 09:00" in shown
    assert "小林，送你一张隐形眼镜首单券，下单时输入 LENS_FIRST_ORDER-0001 立减 30 元" in shown
    assert "converted: goal “bought lenses” reached" in shown
    visits = re.search(r"data-visits='([^']+)'", result.text)
    assert visits is not None and '"intro": [3]' in visits.group(1)


def test_a_draft_with_problems_is_not_simulated(signed_in: Builder) -> None:
    slug, csrf = lens_journey(signed_in)
    broken = LENS.replace("{{ first_order.code }}", "{{ first_ordr.code }}")
    signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": broken}, csrf)
    result = signed_in.htmx(f"/builder/journeys/{slug}/simulate", SCENARIO, csrf)
    assert "The journey text has 1 problem: fix it (listed under the text) to simulate." in text(result)
    assert "data-visits" not in result.text


def test_bad_input_is_refused_with_every_problem(signed_in: Builder) -> None:
    slug, csrf = lens_journey(signed_in)
    bad = {**SCENARIO, "timezone": "Mars/Base", "events": "+0m purchase category=lens\ntomorrow buy\n"}
    shown = text(signed_in.htmx(f"/builder/journeys/{slug}/simulate", bad, csrf))
    assert "The simulation's input has 2 problems" in shown
    assert "time zone: 'Mars/Base' is not a zone name" in shown
    assert "events, line 2, column 1: 'tomorrow' is not a time" in shown


def test_user_text_is_escaped_in_the_messages(signed_in: Builder) -> None:
    slug, csrf = lens_journey(signed_in)
    hostile = {**SCENARIO, "traits": 'first_name = "<img src=x onerror=alert(1)>"\npush_token = t\n'}
    result = signed_in.htmx(f"/builder/journeys/{slug}/simulate", hostile, csrf)
    assert "<img src=x" not in result.text and "&lt;img src=x onerror=alert(1)&gt;" in result.text


def test_a_real_profile_is_loaded_as_the_sample(signed_in: Builder) -> None:
    slug, _ = lens_journey(signed_in)
    db = connect(signed_in.database_url)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with db.begin() as conn:
        profile_id = conn.execute(insert(profiles).values(
            traits={"first_name": "Wei", "push_token": "tok-9"}, tags=["vip"], timezone="Asia/Shanghai",
            created_at=now, updated_at=now).returning(profiles.c.id)).scalar_one()
        conn.execute(insert(identities), [{"kind": "user_id", "value": "u-9", "profile_id": profile_id},
                                          {"kind": "phone", "value": "13800000009", "profile_id": profile_id}])
    db.dispose()
    path = f"/builder/journeys/{slug}/simulate/profile"
    found = signed_in.client.get(path, params={"kind": "phone", "value": "13800000009"})
    assert 'name="user_id" value="u-9"' in found.text
    assert "first_name = Wei" in found.text and 'value="vip"' in found.text
    assert 'value="Asia/Shanghai"' in found.text and 'value="phone=13800000009"' in found.text
    missing = signed_in.client.get(path, params={"kind": "phone", "value": "000", "user_id": "kept"})
    assert "No profile has phone" in html.unescape(missing.text) and 'value="kept"' in missing.text


def test_scenarios_rerun_after_an_edit_show_the_difference_and_accept_it(signed_in: Builder) -> None:
    slug, csrf = lens_journey(signed_in)
    base = f"/builder/journeys/{slug}"
    assert "None yet" in signed_in.client.get(f"{base}/scenarios").text
    assert "Give the scenario a name" in text(signed_in.htmx(f"{base}/scenarios", SCENARIO, csrf))
    saved = signed_in.htmx(f"{base}/scenarios", {**SCENARIO, "scenario_name": "care, then lenses"}, csrf)
    assert "Saved “care, then lenses” with its outcome." in text(saved)
    assert "same outcome" in text(signed_in.client.get(f"{base}/scenarios"))

    signed_in.htmx(f"{base}/text", {"source": LENS.replace("立减 30 元，7 天内有效", "立减 50 元")}, csrf)
    changed = signed_in.client.get(f"{base}/scenarios")
    assert "outcome changed" in text(changed)
    assert re.search(r'class="ddel">-.*立减 30 元，7 天内有效', changed.text)
    assert re.search(r'class="dadd">\+.*立减 50 元', changed.text)
    scenario_id = re.search(r"/scenarios/(\d+)/accept", changed.text)
    assert scenario_id is not None

    rerun = signed_in.htmx(f"{base}/scenarios/{scenario_id.group(1)}/run", {}, csrf)
    assert 'hx-target="#sim-form-wrap"' in rerun.text and 'hx-target="#sim-result"' in rerun.text
    assert "立减 50 元" in rerun.text and "+2d12h product_viewed category=lens" in rerun.text

    accepted = signed_in.htmx(f"{base}/scenarios/{scenario_id.group(1)}/accept", {}, csrf)
    assert "Accepted the new outcome" in text(accepted) and "same outcome" in text(accepted)
    deleted = signed_in.htmx(f"{base}/scenarios/{scenario_id.group(1)}/delete", {}, csrf)
    assert "None yet" in text(deleted)
    gone = signed_in.htmx(f"{base}/scenarios/{scenario_id.group(1)}/run", {}, csrf)
    assert gone.status_code == 404 and "That scenario no longer exists." in text(gone)
    beyond = signed_in.htmx(f"{base}/scenarios/{2**63}/accept", {}, csrf)  # past the id column's range
    assert beyond.status_code == 404 and "That scenario no longer exists." in text(beyond)


# --------------------------------------------------------------------------- choosing a split's arm

AB = (ROOT / "examples/journeys/ab_message_test.journey").read_text(encoding="utf-8")
AB_INPUT = {"user_id": "u-1", "traits": "first_name = Lin\npush_token = tok-1\n", "tags": "member", "timezone": "",
            "identities": "", "start": "2026-06-01 10:00", "events": "+0m signup\n"}


def arm_taken(user_id: str, forced: dict[str, int] | None) -> str:
    """The arm of @offer_test the engine's simulation sends `user_id` down."""
    profile, events, _ = SimulationInput.of({**AB_INPUT, "user_id": user_id}).read("Asia/Shanghai")
    seed = SeedProfile(profile.user_id, profile.traits, profile.tags, None, ())
    lines = simulate([AB], messages_of(events, user_id), trace=True, seeds=[seed], forced_arms=forced)
    return next(str(line["detail"]).split()[0] for line in lines if line.get("trace") == "split")


AB_SPLIT = compile_source(AB).nodes["offer_test"]


@given(st.text(max_size=20), st.dictionaries(st.text(max_size=12), st.integers(-3, 5), max_size=3))
def test_only_the_splits_own_forced_arm_changes_the_choice(user: str, forced: dict[str, int]) -> None:
    assert isinstance(AB_SPLIT, g.SplitNode)
    live = choose_arm(AB_SPLIT.arms, user, "j", "offer_test")
    index = forced.get("offer_test")
    expected = AB_SPLIT.arms[index] if index is not None and 0 <= index < len(AB_SPLIT.arms) else live
    assert pick_arm(AB_SPLIT.arms, user, "j", "offer_test", forced) == expected
    assert pick_arm(AB_SPLIT.arms, user, "j", "offer_test", {}) == live


def test_a_forced_arm_is_taken_and_as_assigned_is_the_live_hashing() -> None:
    split = compile_source(AB).nodes["offer_test"]
    assert isinstance(split, g.SplitNode)
    for user in ("u-1", "u-2", "u-3", "u-4"):
        live = choose_arm(split.arms, f"user_id:{user}", "a-b-first-order-offer", "offer_test").id
        assert arm_taken(user, None) == arm_taken(user, {}) == live
        for index, arm in enumerate(split.arms):
            assert arm_taken(user, {"offer_test": index}) == arm.id
    assert arm_taken("u-1", {"offer_test": 9}) == arm_taken("u-1", None)  # no such arm: as assigned


def test_the_panel_offers_each_splits_arms_and_runs_down_the_chosen_one(signed_in: Builder) -> None:
    slug = create(signed_in)
    csrf = signed_in.csrf(f"/builder/journeys/{slug}")
    assert signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": AB}, csrf).status_code == 200
    base = f"/builder/journeys/{slug}"
    form = html.unescape(signed_in.client.get(f"{base}/simulate", headers={"HX-Request": "true"}).text)
    assert '<select id="sim-arm_of_offer_test" name="arm_of_offer_test"' in form
    assert "as assigned (the person's own branch, as live)" in form
    assert "A · 45% (arm_coupon)" in form and "Control · 10% (arm_control)" in form

    def run(choice: str | None) -> str:
        extra = {"arm_of_offer_test": choice} if choice is not None else {}
        result = signed_in.htmx(f"{base}/simulate", {**AB_INPUT, **extra}, csrf)
        assert result.status_code == 200
        return text(result)

    assert "FIRST_ORDER_20-0001" in run("0")  # the coupon arm's SMS
    assert "free_shipping_offer" in run("1")
    control = run("2")
    assert "FIRST_ORDER_20" not in control and "free_shipping_offer" not in control
    assert run("") == run(None)  # as assigned is what the engine chooses unforced
    again = signed_in.client.get(f"{base}/simulate/arms", params={"arm_of_offer_test": "1"})
    assert re.search(r'<option value="1" selected>B · 45%', again.text)


@given(st.text(max_size=8))
def test_any_posted_arm_is_an_arm_or_as_assigned_never_a_crash(posted: str) -> None:
    """"²" and "١" pass str.isdigit; int() then raised (a 500) or took "١" for 1."""
    choices = split_choices(compile_source(AB))
    forced = forced_arms({choices[0].field: posted}, choices)
    assert forced in ({}, {"offer_test": 0}, {"offer_test": 1}, {"offer_test": 2})
    if posted.strip() in ("0", "1", "2"):
        assert forced == {"offer_test": int(posted)}
    if not posted.strip().isascii():
        assert forced == {}
