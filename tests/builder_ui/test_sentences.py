"""The canvas's sentences: every construct of docs/dsl.md said in plain words, values kept as
written, placeholders as chips, and never a crash (generated journeys, every example)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from builder_ui import sentences as s
from dsl import model as m
from dsl import parse
from dsl.formatter import format_setting, step_header
from dsl.ids import walk_steps
from tests.dsl import strategies

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "journeys").glob("*.journey"))


def journey(settings_text: str, steps_text: str = "pass") -> m.Journey:
    body = "\n".join(f"  {line}" for line in settings_text.strip().splitlines())
    steps = "\n".join(f"  {line}" for line in steps_text.strip().splitlines())
    return parse(f'journey "t"\n{body}\n\n{steps}\n')


def first_step(steps_text: str, settings_text: str = 'trigger event "signup"') -> m.Step:
    return journey(settings_text, steps_text).steps[0]


def step_words(steps_text: str, settings_text: str = 'trigger event "signup"') -> str:
    return s.plain(s.step(first_step(steps_text, settings_text)))


def setting_words(line: str) -> str:
    """The words for one setting line (a journey needs a trigger: `trigger api` comes first)."""
    return s.setting(journey(line if line.startswith("trigger") else f"trigger api\n{line}").settings()[-1])


def condition_words(text: str) -> str:
    audience = journey(f'trigger event "signup"\naudience {text}').audience
    assert audience is not None
    return s.condition(audience.condition)


@pytest.mark.parametrize(("line", "words"), [
    ('trigger event "purchase" where event.category == "care_solution"', "When someone buys care solution"),
    ('trigger event "purchase" where event.category == "lens" and event.channel == "store"',
     "When someone buys lens where channel is store"),
    ('trigger event "Viewed Pricing Page"', "When someone does Viewed Pricing Page"),
    ('trigger event "event_rsvp" where event.kind == "members_only"',
     "When someone does event_rsvp where kind is members_only"),
    ('trigger event "signup" where event.referrer_id != user.id',
     "When someone signs up where referrer id is not their id"),
    ("trigger when user.total_spend >= 3000", "When this becomes true: total spend is at least 3000"),
    ('trigger schedule "0 10 * * 4"', "Every Thursday at 10:00, for everyone who fits"),
    ('trigger schedule "30 9 * * *" in user zone', "Every day at 09:30, for everyone who fits"),
    ('trigger schedule "0 3 * * *" in journey zone',
     "Every day at 03:00 in the journey's time zone, for everyone who fits"),
    ('trigger schedule "*/15 8-20 * * *"', "On the schedule “*/15 8-20 * * *”, for everyone who fits"),
    ("trigger api", "When another system adds them (API)"),
    ('audience "vip" in user.tags and "unsubscribed" not in user.tags',
     "Who: has tag vip and does not have tag unsubscribed"),
    ("entry once", "Enters only once"),
    ("entry always", "Can enter again every time"),
    ("entry once every 30d", "Can enter again after 30 days"),
    ('exit on event "purchase" where event.category == "lens"', "Leaves when they buy lens"),
    ('exit when "unsubscribed" in user.tags', "Leaves when this becomes true: has tag unsubscribed"),
    ('goal "bought lenses" on event "purchase" where event.category == "lens" within 14d',
     "Goal: bought lenses within 14 days"),
    ('goal "bought" on event "purchase" within 14d then exit', "Goal: bought within 14 days, then leaves"),
    ('goal "bound WeChat" when exists(user.wechat_openid) within 1d12h', "Goal: bound WeChat within 1 day 12 hours"),
    ("quiet hours 21:00-09:00", "No messages 21:00–09:00"),
    ('timezone "Asia/Shanghai"', "Time zone: Asia/Shanghai"),
    ("frequency cap 2 messages per 1d", "At most 2 messages per day"),
    ("frequency cap sms 1 message per 7d", "At most 1 SMS per 7 days"),
    ("frequency cap push 3 messages per 1h", "At most 3 push messages per hour"),
])
def test_every_setting_is_a_sentence(line: str, words: str) -> None:
    assert setting_words(line) == words


@pytest.mark.parametrize(("step", "words"), [
    ("wait 2d", "Wait 2 days"),
    ("wait 1h30m", "Wait 1 hour 30 minutes"),
    ("wait 2 days", "Wait 2 days (same time of day)"),
    ("wait until 10:00", "Wait until 10:00"),
    ("wait until saturday 10:00", "Wait until 10:00 (Saturday)"),
    ('send sms "Try lenses free with code {{ trial.code }}"', "Send SMS: Try lenses free with code [trial code]"),
    ("send sms \"【清瞳】{{ user.first_name | default('您好') }}，首单立减\"",
     "Send SMS: 【清瞳】[first name]，首单立减"),
    ('send push template "lens_intro"', "Send push: template lens_intro"),
    ('send push "Your benefits are ready." title "Welcome, {{ user.first_name }}"',
     "Send push: Your benefits are ready. — titled “Welcome, [first name]”"),
    ('issue coupon "LENS_TRIAL_STORE" as trial', "Give a coupon from LENS_TRIAL_STORE (as trial)"),
    ('issue coupon "LENS_TRIAL"', "Give a coupon from LENS_TRIAL"),
    ('call webhook "https://stores.example.com/v1/nearest?region={{ user.region }}" as store',
     "Call stores.example.com (answer as store)"),
    ('call webhook "https://points.example.com/v1/credits" with {"member_id": user.id, "points": 200}',
     "Call points.example.com, sending member id, points"),
    ('update user.stage = "loyal"', "Set stage to “loyal”"),
    ("update user.points += 100", "Add 100 to points"),
    ("update user.points -= 10", "Take 10 from points"),
    ("update user.last_order_id = event.order_id", "Set last order id to the event's order id"),
    ('add tag "vip"', "Add tag vip"),
    ('remove tag "stage_active"', "Remove tag stage_active"),
    ("exit", "End the journey here"),
    ("pass", "Do nothing"),
    ("if user.total_spend >= 1000:\n  pass", "If total spend is at least 1000"),
    ('split "offer test":\n  50%:\n    pass\n  50%:\n    pass', "Split people at random: offer test"),
    ('wait for event "purchase" where event.category == "lens" up to 7d:\n  received:\n    pass\n'
     "  timeout:\n    pass", "Wait up to 7 days for them to buy lens"),
    ('wait for event "coupon_redeemed" where event.pool == "LENS_TRIAL_STORE" up to 10d:\n  received:\n'
     "    pass\n  timeout:\n    pass", "Wait up to 10 days for them to use a coupon from LENS_TRIAL_STORE"),
])
def test_every_step_is_a_sentence(step: str, words: str) -> None:
    assert step_words(step) == words


def test_placeholders_are_chips_and_the_words_around_them_stay_as_written() -> None:
    said = s.message("{{ event.product_name }} 还在购物车里，送你 {{ nudge.code }}{{ a + b }}")
    assert said == (s.Part("product name", chip=True), s.Part(" 还在购物车里，送你 "),
                    s.Part("nudge code", chip=True), s.Part("a + b", chip=True))
    assert s.message("") == (s.Part("(no text)"),)


@pytest.mark.parametrize(("expr", "words"), [
    ("user.total_spend >= 1000", "total spend is at least 1000"),
    ("user.total_spend < 100 or user.points > 5", "total spend is less than 100 or points is more than 5"),
    ('(user.a == 1 or user.b == 2) and user.c <= 3', "(a is 1 or b is 2) and c is at most 3"),
    ('user.stage != "lost"', "stage is not lost"),
    ('user.city == "上海"', "city is 上海"),
    ('user.stage == "lens buyer"', "stage is “lens buyer”"),
    ('user.tags contains "member"', "has tag member"),
    ('lower(user.city) in ["shanghai", "beijing"]', "city (in lower case) is one of shanghai, beijing"),
    ('user.channel not in ["store"]', "channel is none of store"),
    ('"vip" in user.note', "vip is in note"),
    ("exists(user.push_token)", "has push token"),
    ("not exists(user.wechat_openid)", "has no wechat openid"),
    ("not (user.stage == \"lost\")", "not (stage is lost)"),
    ("user.note == null", "note is empty"),
    ("user.note != null", "note is set"),
    ("user.blocked == true", "blocked is yes"),
    ("days_since(user.last_purchase_at) >= 60", "days since last purchase is at least 60"),
    ("len(user.tags) > 0", "number of tags is more than 0"),
    ("upper(user.country) == \"CN\"", "country (in upper case) is CN"),
    ("now() - user.last_login_at > 1d", "now minus last login is more than 1 day"),
    ("(user.total_spend + 1) * 2 >= -1", "(total spend plus 1) times 2 is at least -1"),
    ('count of "purchase" where event.category == "lens" ever == 0', "has never bought lens"),
    ('count of "purchase" ever == 0', "has never bought anything"),
    ('count of "purchase" within 30d == 0', "has not bought anything in the last 30 days"),
    ('count of "purchase" within 365d >= 6', "has bought something at least 6 times in the last 365 days"),
    ('count of "purchase" ever >= 1', "has bought something at least once"),
    ('count of "Viewed Pricing Page" within 7d >= 2', "has done Viewed Pricing Page at least twice in the last 7 days"),
    ('count of "purchase" where event.amount >= 1000 ever > 2',
     "has bought something where amount is at least 1000 more than twice"),
])
def test_conditions_read_as_words(expr: str, words: str) -> None:
    assert condition_words(expr) == words


def test_split_arms_are_lettered_by_position_and_if_arms_by_their_condition() -> None:
    split = first_step('split "t":\n  @arm_coupon 45%:\n    pass\n  45%:\n    pass\n  10% control:\n    pass')
    assert isinstance(split, m.Split)
    assert s.split_arm_titles(split) == ["A · 45%", "B · 45%", "Control · 10%"]
    control_first = first_step('split "t":\n  10% control:\n    pass\n  90%:\n    pass')
    assert isinstance(control_first, m.Split)
    assert s.split_arm_titles(control_first) == ["Control · 10%", "B · 90%"]  # as the step ids letter them
    assert s.if_arm_title(m.Compare(">=", m.Path(("user", "total_spend")), m.Lit(1000))) == \
        "Total spend is at least 1000"


def test_problems_lose_their_line_numbers() -> None:
    assert s.problem("the label @a is used twice", "the first is on line 7; labels must be unique", False) == \
        "the label @a is used twice"
    assert s.problem("goal 'x' is defined twice (the first is on line 4)", None, False) == \
        "goal 'x' is defined twice"
    assert s.problem("message: unknown name 'trail' in the template", None, False) == \
        "unknown name 'trail' in the template"
    syntax = s.problem("unexpected '2'; expected \"for\"", "a duration needs a unit (as in `2d`)", True)
    assert syntax == "This step's text does not read: a duration needs a unit (as in 2d)"
    assert "line" not in syntax and "unexpected" not in syntax


def test_a_shape_nobody_foresaw_is_said_as_its_text() -> None:
    odd = m.Call("mystery", (m.Lit(1), m.Lit(2)))
    assert s.condition(odd) == "mystery(1, 2)"
    goal = m.Goal("g", None, None, 0)  # no condition and no event: not a goal the parser builds
    assert s.setting(goal) == "Goal: g within no time"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_examples_read_without_template_code_or_dsl_operators(path: Path) -> None:
    example = parse(path.read_text(encoding="utf-8"))
    said = [s.setting(x) for x in example.settings()] + [s.plain(s.step(x)) for x in walk_steps(example.steps)]
    for words in said:
        assert words and words[0].isupper(), words
        for code in ("{{", "}}", "==", ">=", "user.", "event.", "count of"):
            assert code not in words, (code, words)


@settings(max_examples=150, deadline=None)
@given(strategies.journeys)
def test_any_journey_is_said_in_words_not_as_its_text(generated: m.Journey) -> None:
    """The DSL fallback (lower case, as the text writes it) is for shapes nobody foresaw: every
    journey the parser can build gets real sentences (which start with a capital)."""
    for setting in generated.settings():
        assert s.setting(setting) != format_setting(setting)
    for step in walk_steps(generated.steps):
        said = s.step(step)
        assert said and all(isinstance(part.text, str) for part in said)
        assert s.plain(said) != step_header(step).removesuffix(":")
        if isinstance(step, m.Split):
            assert len(s.split_arm_titles(step)) == len(step.arms)
        if isinstance(step, m.If):
            assert all(s.if_arm_title(arm.condition) for arm in step.arms)


@settings(max_examples=300, deadline=None)
@given(strategies.exprs)
def test_any_condition_has_words_of_its_own(expr: m.Expr) -> None:
    """No safety net here: the words come from the condition code itself, not the DSL fallback."""
    words = s.condition(expr)
    assert isinstance(words, str) and words
