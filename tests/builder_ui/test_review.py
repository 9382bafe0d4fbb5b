"""The publish review's facts (builder_ui/review.py), from parsed journeys and given stock: what
blocks a publish (a missing or empty pool, an unknown template, no steps), what only warns
(quiet hours in the installation's zone, nobody in the audience, templates not checkable), and
the sentences a marketer reads."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

from actions.settings import Settings as ActionSettings
from actions.settings import Template
from api.settings import Settings
from builder_ui import review as rv
from dsl import parse
from dsl.durations import parse_duration
from engine.clock import SystemClock
from storage import connect
from storage.tables import profiles
from tests.api.conftest import serve_in_thread

from .conftest import Builder, make_database

LENS = """journey "Lens trial"
  trigger event "purchase" where event.category == "care_solution"
  audience "unsubscribed" not in user.tags
  entry once every 30d
  quiet hours 21:00-09:00
  frequency cap sms 1 message per 1d

  @trial issue coupon "LENS_TRIAL" as trial
  @offer send sms "Try lenses free: {{ trial.code }}"
  @intro send push template "lens_intro"
"""


def facts(pools: dict[str, int] | None = None, templates: frozenset[str] | None = None,
          estimate: rv.Estimate | None = None, zone: str = "UTC") -> rv.Facts:
    return rv.Facts({"LENS_TRIAL": 1200} if pools is None else pools, templates,
                    rv.Estimate(30, 100, 100) if estimate is None else estimate, zone)


def test_a_stocked_journey_with_known_templates_is_not_blocked_and_reads_in_plain_words() -> None:
    review = rv.review(parse(LENS), [], facts(templates=frozenset({"lens_intro"})))
    assert not review.blocked
    assert review.entry == ("People who buy care solution", "A person may enter again at most once every 30 days.")
    assert review.audience == "Only people who fit: does not have tag unsubscribed."
    assert review.estimate == "30 of 100 profiles match the audience now."
    assert [(m.step, m.channel, m.coupons) for m in review.messages] == [("offer", "SMS", ("LENS_TRIAL",)),
                                                                         ("intro", "push", ())]
    assert review.messages[0].content == "“Try lenses free: [trial code]”"  # placeholders as the canvas shows them
    assert review.messages[1].content == "the template “lens_intro”"
    assert review.coupons == ("LENS_TRIAL: 1,200 free codes",)
    assert "At most 1 message on SMS per day per person." in review.manners
    assert "Time zone for people whose profile has none: UTC (the installation's default: the journey sets none)." \
        in review.manners
    text = " ".join((*review.entry, *review.manners, *review.warnings))
    assert not re.search(r"\bline \d", text)  # no DSL positions in a marketer's review


def test_a_missing_pool_an_empty_pool_and_an_unknown_template_block() -> None:
    missing = rv.review(parse(LENS), [], facts(pools={}, templates=frozenset({"lens_intro"})))
    assert [p.step for p in missing.problems] == ["trial"]
    assert "“LENS_TRIAL” does not exist" in missing.problems[0].message
    assert missing.coupons == ("LENS_TRIAL: does not exist",)
    empty = rv.review(parse(LENS), [], facts(pools={"LENS_TRIAL": 0}, templates=frozenset({"lens_intro"})))
    assert "no free codes" in empty.problems[0].message
    unknown = rv.review(parse(LENS), [], facts(templates=frozenset({"other"})))
    assert [(p.step, "“lens_intro” does not exist" in p.message) for p in unknown.problems] == [("intro", True)]


def test_templates_that_cannot_be_checked_warn_without_blocking() -> None:
    review = rv.review(parse(LENS), [], facts(templates=None))
    assert not review.blocked
    assert any("Templates cannot be checked" in w and "“lens_intro” exists" in w for w in review.warnings)


def test_a_journey_of_only_pass_is_blocked_and_the_validators_problems_come_first() -> None:
    new = parse('journey "New"\n  trigger event "signup"\n\n  pass\n')
    given_problem = rv.Problem("unknown name 'nobody'", "hello")
    review = rv.review(new, [given_problem], facts())
    assert review.blocked
    assert review.problems[0] == given_problem
    assert "no steps yet" in review.problems[1].message


def test_quiet_hours_without_a_journey_zone_warn_and_name_the_installation_zone() -> None:
    review = rv.review(parse(LENS), [], facts(zone="Asia/Shanghai", templates=frozenset({"lens_intro"})))
    assert review.warnings == ("Quiet hours are set but the journey has no time zone: for people without one of "
                               "their own, they are read in the installation's zone, Asia/Shanghai.",)
    zoned = parse(LENS.replace("  quiet hours", '  timezone "Europe/Paris"\n  quiet hours'))
    review = rv.review(zoned, [], facts(zone="Asia/Shanghai", templates=frozenset({"lens_intro"})))
    assert review.warnings == ()
    assert "Time zone for people whose profile has none: Europe/Paris (the journey's time zone)." in review.manners


def test_a_schedule_for_everyone_at_once_names_the_zone_it_reads() -> None:
    text = LENS.replace('trigger event "purchase" where event.category == "care_solution"',
                        'trigger schedule "0 10 * * 4" in journey zone')
    assert rv.review(parse(text), [], facts(zone="Asia/Tokyo")).entry[0] == \
        "Every Thursday at 10:00, at the same moment for everyone (Asia/Tokyo): everyone in the audience"


def test_an_empty_audience_warns_and_a_sample_says_so() -> None:
    nobody = rv.review(parse(LENS), [], facts(estimate=rv.Estimate(0, 40, 40), templates=frozenset({"lens_intro"})))
    assert "No profile matches the audience now" in " ".join(nobody.warnings)
    assert not nobody.blocked
    sampled = rv.review(parse(LENS), [], facts(estimate=rv.Estimate(496, 2000, 50_000)))
    assert sampled.estimate == "About 12,400 of 50,000 profiles match the audience now, from a sample of 2,000."
    none = rv.review(parse(LENS), [], facts(estimate=rv.Estimate(0, 0, 0)))
    assert none.estimate == "There are no profiles yet, so nobody would match now."


def test_an_audience_that_reads_the_trigger_event_is_not_estimated() -> None:
    text = LENS.replace('audience "unsubscribed" not in user.tags', "audience event.amount > 100")
    review = rv.review(parse(text), [], facts())
    assert "cannot be estimated" in review.estimate
    counted = LENS.replace('audience "unsubscribed" not in user.tags',
                           'audience count of "purchase" where event.amount > 100 ever >= 1')
    assert rv.review(parse(counted), [], facts()).estimate == "30 of 100 profiles match the audience now."


@given(st.integers(min_value=0, max_value=10**9))
def test_a_plain_duration_reads_back_to_the_same_seconds(seconds: int) -> None:
    words = rv.plain_duration(seconds)
    units = {"day": "d", "hour": "h", "minute": "m", "second": "s"}
    dsl = "".join(f"{n}{units[u]}" for n, u in re.findall(r"(\d+) (day|hour|minute|second)s?", words))
    assert parse_duration(dsl or "0s") == seconds


@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=1, max_value=5000),
       st.integers(min_value=0, max_value=10**7))
def test_a_scaled_estimate_stays_within_the_population(matching: int, checked: int, extra: int) -> None:
    matching = min(matching, checked)
    estimate = rv.Estimate(matching, checked, checked + extra)
    assert 0 <= estimate.scaled <= estimate.population
    if not estimate.sampled:
        assert estimate.scaled == matching
    shown = int(rv.about(estimate.scaled).replace(",", ""))
    assert abs(shown - estimate.scaled) <= estimate.scaled * 0.005


# ------------------------------------------------------------------ the review over HTTP, and the server's refusal

COUPON_JOURNEY = """journey "Trial"
  trigger event "signup"
  audience "vip" in user.tags

  @trial issue coupon "LENS_TRIAL" as trial
  @hello send sms "Your code: {{ trial.code }}"
"""


def add_people(database_url: str, tags: list[list[str]]) -> None:
    db = connect(database_url)
    try:
        with db.begin() as conn:
            now = SystemClock().now()
            conn.execute(insert(profiles), [{"traits": {}, "tags": t, "created_at": now, "updated_at": now}
                                            for t in tags])
    finally:
        db.dispose()


def journey_with(b: Builder, source: str) -> str:
    response = b.client.post("/builder/journeys", data={"name": "Trial", "csrf_token": b.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": source}, b.csrf()).status_code == 200
    return slug


def problems_in(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", p).strip() for p in re.findall(r'<li class="review-problem">(.*?)</li>', html)]


def test_a_new_journey_of_only_a_trigger_cannot_be_published(signed_in: Builder) -> None:
    response = signed_in.client.post("/builder/journeys", data={"name": "Empty", "csrf_token": signed_in.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    review = signed_in.client.get(f"/builder/journeys/{slug}/review").text
    assert 'id="publish-review"' in review
    assert problems_in(review) == ["The journey has no steps yet: add a message or another step before publishing."]
    assert re.search(r'<button[^>]*id="confirm-publish"[^>]*disabled', review, re.S)
    refused = signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": signed_in.rev(slug)}, signed_in.csrf())
    assert refused.status_code == 422 and "Not published: 1 problem" in refused.text


def test_a_missing_pool_blocks_until_it_is_created_and_stocked_in_the_builder(signed_in: Builder) -> None:
    add_people(signed_in.database_url, [["vip"], ["vip"], []])
    slug = journey_with(signed_in, COUPON_JOURNEY)
    review = signed_in.client.get(f"/builder/journeys/{slug}/review").text
    assert problems_in(review) == ["Step trial: The coupon pool “LENS_TRIAL” does not exist: create it on the "
                                   "Coupon pools page and add codes."]
    assert "2 of 3 profiles match the audience now." in review
    assert "with a code from LENS_TRIAL" in review
    csrf = signed_in.csrf()
    rev = signed_in.rev(slug)
    assert signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": rev}, csrf).status_code == 422

    token = signed_in.csrf("/builder/pools")
    assert signed_in.client.post("/builder/pools", data={"name": "LENS_TRIAL", "codes_per_user": "one",
                                                         "csrf_token": token}).status_code == 303
    empty = signed_in.client.get(f"/builder/journeys/{slug}/review").text
    assert problems_in(empty) == ["Step trial: The coupon pool “LENS_TRIAL” has no free codes: add codes on the "
                                  "Coupon pools page."]
    stocked = signed_in.client.post("/builder/pools/LENS_TRIAL/codes", data={"csrf_token": token},
                                    files={"codes": ("codes.csv", b"code\nT-1\nT-2\n", "text/csv")})
    assert stocked.status_code == 303
    ready = signed_in.client.get(f"/builder/journeys/{slug}/review").text
    assert problems_in(ready) == []
    assert "LENS_TRIAL: 2 free codes" in ready
    assert not re.search(r'<button[^>]*id="confirm-publish"[^>]*disabled', ready, re.S)
    published = signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": rev}, csrf)
    assert published.status_code == 200, published.text
    assert "Published: the new version is live." in published.text


def test_a_publish_is_of_the_text_reviewed(signed_in: Builder) -> None:
    slug = journey_with(signed_in, 'journey "Trial"\n  trigger api\n\n  @hello send sms "Hi"\n')
    reviewed = signed_in.rev(slug)
    csrf = signed_in.csrf()
    changed = 'journey "Trial"\n  trigger api\n\n  @hello send sms "Bye"\n'
    signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": changed}, csrf)
    stale = signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": reviewed}, csrf)
    assert stale.status_code == 409 and "changed since the review" in stale.text
    assert signed_in.htmx(f"/builder/journeys/{slug}/publish", {}, csrf).status_code == 409  # no review at all
    assert signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": signed_in.rev(slug)}, csrf).status_code == 200


def test_the_settings_name_the_zone_in_force(signed_in: Builder) -> None:
    source = 'journey "Trial"\n  trigger schedule "0 10 * * 4" in journey zone\n\n  @hello send sms "Hi"\n'
    slug = journey_with(signed_in, source)
    panel = signed_in.client.get(f"/builder/journeys/{slug}/settings").text
    zone = re.search(r'<select name="timezone">(.*?)</select>', panel, re.S)
    assert zone is not None
    assert re.findall(r'<option value="([^"]*)"( selected)?>', zone.group(1))[0] == ("", " selected")
    assert "Installation default (UTC)" in zone.group(1)
    assert "the same moment for everyone (UTC time)" in panel
    rare = source.replace("\n\n", '\n  timezone "Africa/Abidjan"\n\n')
    assert signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": rare}, signed_in.csrf()).status_code == 200
    panel = signed_in.client.get(f"/builder/journeys/{slug}/settings").text
    assert '<option value="Africa/Abidjan" selected>Africa/Abidjan</option>' in panel
    assert "the same moment for everyone (Africa/Abidjan time)" in panel
    review = signed_in.client.get(f"/builder/journeys/{slug}/review").text
    assert "at the same moment for everyone (Africa/Abidjan)" in review
    assert "Africa/Abidjan (the journey&#39;s time zone)" in review


def test_the_installations_templates_are_checked_and_its_zone_named(tmp_path: Path) -> None:
    database_url = make_database(tmp_path / "templates.db")
    actions = ActionSettings(templates={"lens_intro": Template("Hi {{ user.first_name }}")})
    running, thread, url = serve_in_thread(Settings(database_url=database_url, actions=actions,
                                                    default_zone="Asia/Shanghai"))
    try:
        with httpx.Client(base_url=url) as client:
            b = Builder(client, database_url)
            assert b.login().status_code == 303
            source = ('journey "Trial"\n  trigger api\n  quiet hours 21:00-09:00\n\n'
                      '  @intro send push template "lens_intro"\n  @later send sms template "lens_later"\n')
            slug = journey_with(b, source)
            review = client.get(f"/builder/journeys/{slug}/review").text
            assert problems_in(review) == ["Step later: The template “lens_later” does not exist: choose a template "
                                           "that exists, or write the text in the step."]
            assert "the installation&#39;s zone, Asia/Shanghai" in review
            assert "Templates cannot be checked" not in review
            settings = client.get(f"/builder/journeys/{slug}/settings").text
            assert "Installation default (Asia/Shanghai)" in settings
    finally:
        running.should_exit = True
        thread.join()
