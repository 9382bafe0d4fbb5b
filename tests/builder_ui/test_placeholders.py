"""What a message can say at its step: the "Insert…" menu, the message in plain words, unknown
profile fields, and the preview agreeing with the check about results named before the step;
in `placeholders` directly and through the step panel's routes."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

from builder_ui import panels
from builder_ui import placeholders as ph
from builder_ui.field_catalog import Field, Fields, merge
from dsl import model as m
from dsl.errors import JourneyInvalid
from dsl.ids import walk_steps
from dsl.parser import parse
from dsl.validate import validate
from journeyflow.cli import load_catalog
from storage import connect
from storage.tables import profiles

from .conftest import EXAMPLES_CATALOG, Builder

JOURNEY = """journey "Trial"
  trigger event "signup"

  @hello send sms "Hi {{ user.first_name }}"
  @trial issue coupon "LENS_TRIAL_STORE" as trial
  @store call webhook "https://stores.example.com/v1/nearest" with {"region": user.region} as store
  @invite send sms "Show {{ trial.code }} at {{ store.name }}"
  @vip if "vip" in user.tags:
    @gift issue coupon "VIP_GIFT" as gift
  @after send sms "Thanks"
"""
EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "journeys").glob("*.journey"))
PLAIN = re.compile(r"""^\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\s*(?:\|\s*default\('([^']*)'\)\s*)?$""")

FIELDS = Fields(
    traits={"first_name": Field("user.first_name", "text", (), "first name"),
            "region": Field("user.region", "text", (), "region"), "tags": Field("user.tags", "list", (), "tags")},
    events={"signup": {"channel": Field("event.channel", "text", ("store", "app"), "channel")},
            "purchase": {"amount": Field("event.amount", "number", (), "amount")}},
)


def step(journey: m.Journey, label: str) -> m.Step:
    return next(s for s in walk_steps(journey.steps) if s.label == label)


def codes(where: ph.Available) -> list[str]:
    return [p.code for p in where.placeholders]


# --------------------------------------------------------------------------- what is available where


def test_a_step_offers_the_profile_the_trigger_event_and_only_the_results_named_before_it() -> None:
    journey = parse(JOURNEY)
    first = ph.available(journey, step(journey, "hello"), FIELDS)
    assert codes(first) == ["user.first_name", "user.region", "event.channel"]  # no tags, no purchase's fields
    later = ph.available(journey, step(journey, "invite"), FIELDS)
    assert codes(later)[3:] == ["store.status", "store.body", "store.name", "store.*", "trial.code",
                                "trial.expires_at"]
    assert later.label("trial.code") == "trial coupon code"
    assert later.label("store.name") == "store reply name"


def test_a_result_set_in_one_branch_only_is_not_offered_after_the_branches() -> None:
    journey = parse(JOURNEY)
    after = ph.available(journey, step(journey, "after"), FIELDS)
    assert after.results == frozenset({"trial", "store"})
    inside = ph.available(journey, step(journey, "gift"), FIELDS)
    assert "gift.code" not in codes(inside)  # its own result comes after it


def test_a_journey_not_triggered_by_events_offers_no_event() -> None:
    journey = parse('journey "x"\n  trigger api\n\n  @hi send sms "Hi"\n')
    assert [p.group for p in ph.available(journey, journey.steps[0], FIELDS).placeholders] == ["Profile", "Profile"]


# --------------------------------------------------------------------------- the message in plain words


def test_placeholders_read_as_chips_in_plain_words() -> None:
    journey = parse(JOURNEY)
    where = ph.available(journey, step(journey, "invite"), FIELDS)
    text = "【清瞳】{{ user.first_name | default('您好') }}，券码 {{ trial.code }}{{ user.home_store }} {{ x | upper }}"
    assert ph.chips(text, where) == [
        ph.Segment("【清瞳】", False), ph.Segment("first name, or “您好”", True), ph.Segment("，券码 ", False),
        ph.Segment("trial coupon code", True), ph.Segment("home store", True), ph.Segment(" ", False),
        ph.Segment("x | upper", True),
    ]
    assert ph.chips("no placeholder") == [ph.Segment("no placeholder", False)]


def test_an_unknown_profile_field_is_a_problem_with_the_likely_one() -> None:
    journey = parse(JOURNEY)
    where = ph.available(journey, step(journey, "hello"), FIELDS)
    errors = ph.unknown_traits("Hi {{ user.frist_name }}, {{ user.first_name }}", "text", where)
    assert [(e.field, e.message, e.hint) for e in errors] == [("text", "no profile field “frist name”", "first name?")]
    nobody = ph.available(journey, step(journey, "hello"), Fields(traits={"tags": FIELDS.traits["tags"]}))
    assert ph.unknown_traits("{{ user.frist_name }}", "text", nobody) == []  # no profile known: no guess


def test_the_preview_shows_the_checks_problem_for_a_result_not_yet_named() -> None:
    journey = parse(JOURNEY.replace('"Hi {{ user.first_name }}"', '"Your code {{ trial.code }}"'))
    where = ph.available(journey, step(journey, "hello"), FIELDS)
    shown = panels.preview({"kind": "sms", "content": "text", "text": "Your code {{ trial.code }}"}, where)
    try:
        validate(journey, catalog=None)
    except JourneyInvalid as invalid:
        checked = [f"{d.message} — {d.hint}" for d in invalid.diagnostics]
    assert shown["error"] in checked and "text" not in shown
    later = ph.available(journey, step(journey, "invite"), FIELDS)
    filled = panels.preview({"kind": "sms", "content": "text", "text": "Show {{ trial.code }}"}, later)
    assert filled["text"] == f"Show {panels.SAMPLE_RESULT['code']}" and "error" not in filled


def test_known_templates_come_with_their_text_and_an_unknown_one_stays_marked() -> None:
    options = ph.template_options({"welcome": "Hi {{ user.first_name }}, welcome to the membership of our brand!!"},
                                  ["lens_intro", "welcome"], "gone")
    assert [(o.name, o.found) for o in options] == [("lens_intro", True), ("welcome", True), ("gone", False)]
    assert options[0].text is None and options[1].text is not None and options[1].text.endswith("…")
    assert len(options[1].text) == ph.SNIPPET


# --------------------------------------------------------------------------- through the routes


def create(b: Builder, source: str) -> tuple[str, str]:
    csrf = b.csrf()
    response = b.client.post("/builder/journeys", data={"name": "Trial", "csrf_token": csrf})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": source, "rev": b.rev(slug)}, csrf).status_code == 200
    return slug, csrf


def seed_profile(b: Builder, traits: dict[str, object]) -> None:
    db = connect(b.database_url)
    now = datetime.now(UTC)
    try:
        with db.begin() as conn:
            conn.execute(profiles.insert().values(traits=traits, tags=["member"], created_at=now, updated_at=now))
    finally:
        db.dispose()


def test_the_menu_offers_a_coupon_only_to_the_steps_after_it(signed_in: Builder) -> None:
    seed_profile(signed_in, {"first_name": "Lin", "region": "sh"})
    slug, _ = create(signed_in, JOURNEY)
    before = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "0"}).text
    after = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "3"}).text
    assert 'class="placeholder-menu"' in before and 'value="user.first_name"' in before
    assert 'value="trial.code"' not in before
    assert 'value="trial.code"' in after and "trial coupon code" in after


def test_the_check_flags_an_unknown_field_and_the_preview_a_result_not_yet_named(signed_in: Builder) -> None:
    seed_profile(signed_in, {"first_name": "Lin"})
    slug, csrf = create(signed_in, JOURNEY)
    form = {"path": "0", "kind": "sms", "label": "hello", "content": "text"}
    typo = signed_in.htmx(f"/builder/journeys/{slug}/step/check", form | {"text": "Hi {{ user.frist_name }}"}, csrf)
    assert 'data-field="text"' in typo.text and "first name?" in html.unescape(typo.text)
    early = signed_in.htmx(f"/builder/journeys/{slug}/step/check", form | {"text": "Code {{ trial.code }}"}, csrf)
    problem = "message: unknown name &#39;trial&#39; in the template"
    assert early.text.count(problem) == 2  # once in the problems, once in the preview
    assert panels.SAMPLE_RESULT["code"] not in early.text
    words = signed_in.htmx(f"/builder/journeys/{slug}/step/check", form | {"text": "Hi {{ user.first_name }}"}, csrf)
    assert '<span class="chip">[first name]</span>' in words.text


# --------------------------------------------------------------------------- the examples, by clicks


def test_every_example_message_placeholder_is_in_its_steps_menu() -> None:
    """With the examples' catalog, each example message can be written with the menu alone."""
    known = merge(load_catalog(EXAMPLES_CATALOG), {}, {})
    seen = 0
    for path in EXAMPLES:
        journey = parse(path.read_text())
        for send in (s for s in walk_steps(journey.steps) if isinstance(s, m.Send) and s.text):
            offered = codes(ph.available(journey, send, known))
            for inner in re.findall(r"\{\{(.*?)\}\}", send.text or ""):
                simple = PLAIN.match(inner)
                assert simple is not None, inner
                assert simple.group(1) in offered, (path.name, send.label, inner)
                assert simple.group(2) is None or simple.group(1).startswith("user."), inner
                seen += 1
    assert seen >= 30


def test_the_update_and_webhook_forms_offer_only_what_the_step_can_use() -> None:
    journey = parse(JOURNEY)
    choices = ph.value_choices(ph.available(journey, step(journey, "invite"), FIELDS), FIELDS)
    assert choices == {"user": [("first_name", "first name"), ("region", "region")],
                       "event": [("channel", "channel")],
                       "result": [("trial.code", "trial coupon code"), ("trial.expires_at", "trial coupon expiry date"),
                                  ("store.status", "store reply status"), ("store.body", "store reply"),
                                  ("store.name", "store reply name")]}
    api = parse('journey "x"\n  trigger api\n\n  @hi update user.stage = "new"\n')
    assert set(ph.value_choices(ph.available(api, api.steps[0], FIELDS), FIELDS)) == {"user"}


def test_a_reply_not_used_yet_offers_a_field_the_marketer_names() -> None:
    """A reply's fields are the other system's: before any step uses `store.name`, the menu
    still lets the marketer name it ("a field you name…", with the name typed beside it)."""
    journey = parse("""journey "Fresh"
  trigger event "signup"

  @nearest call webhook "https://stores.example.com/v1/nearest" as store
  @hello send sms "Hi"
""")
    offered = ph.available(journey, step(journey, "hello"), FIELDS)
    assert [c for c in codes(offered) if c.startswith("store.")] == ["store.status", "store.body", "store.*"]
    assert offered.label("store.*") == "store reply: a field you name…"
