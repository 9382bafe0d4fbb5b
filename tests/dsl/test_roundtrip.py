"""The formatter and the parser agree: printing a model and reading it back gives the same
model, and the printed text is a fixed point of formatting."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from dsl import model as m
from dsl.formatter import format_journey
from dsl.parser import parse

from .strategies import journeys

ROUNDTRIP = settings(max_examples=300, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUNDTRIP
@given(journeys)
def test_parse_of_format_gives_the_model_back(journey: m.Journey) -> None:
    text = format_journey(journey)
    parsed = parse(text)
    assert parsed == journey
    # Equality treats 1, 1.0 and True alike, and -0.0 like 0.0; the representations do not.
    assert repr(parsed) == repr(journey)
    # The text is plain UTF-8 (lone surrogates are escaped) and line ends do not matter.
    assert parse(text.replace("\n", "\r\n").encode("utf-8")) == journey


@ROUNDTRIP
@given(journeys)
def test_formatting_is_a_fixed_point(journey: m.Journey) -> None:
    text = format_journey(journey)
    assert format_journey(parse(text)) == text


# --------------------------------------------------------------------------- precedence table


def p(*parts: str) -> m.Path:
    return m.Path(parts)


def lit(value: m.Scalar) -> m.Lit:
    return m.Lit(value)


a, b, c, x = p("a"), p("b"), p("c"), p("x")

# (canonical source of an expression, the model the parser must build for it)
CANONICAL_EXPRESSIONS = [
    ("not a == b", m.Unary("not", m.Compare("==", a, b))),
    ("not (a and b)", m.Unary("not", m.Binary("and", a, b))),
    ("not a and b", m.Binary("and", m.Unary("not", a), b)),
    ("(a or b) and c", m.Binary("and", m.Binary("or", a, b), c)),
    ("a or b and c", m.Binary("or", a, m.Binary("and", b, c))),
    ("a - (b - c)", m.Binary("-", a, m.Binary("-", b, c))),
    ("a - b - c", m.Binary("-", m.Binary("-", a, b), c)),
    ("a / (b * c)", m.Binary("/", a, m.Binary("*", b, c))),
    ("(a + b) * c", m.Binary("*", m.Binary("+", a, b), c)),
    ("-(a + b)", m.Unary("-", m.Binary("+", a, b))),
    ("-a * b", m.Binary("*", m.Unary("-", a), b)),
    ("--a", m.Unary("-", m.Unary("-", a))),
    ("x > -2", m.Compare(">", x, lit(-2))),
    ("x - -2.5", m.Binary("-", x, lit(-2.5))),
    ("-2 * x", m.Binary("*", lit(-2), x)),
    ("(a == b) == c", m.Compare("==", m.Compare("==", a, b), c)),
    ('"unsubscribed" not in user.tags', m.Compare("not in", lit("unsubscribed"), p("user", "tags"))),
    ('count of "x" where a == 1 within 30d >= 2',
     m.Compare(">=", m.History("x", m.Compare("==", a, lit(1)), 30 * 86400), lit(2))),
    ('count of "x" ever == 0', m.Compare("==", m.History("x", None, None), lit(0))),
    ("days_since(user.last_order) > 1d12h",
     m.Compare(">", m.Call("days_since", (p("user", "last_order"),)), m.Dur(36 * 3600))),
    ('a in [1, "b", null, true]', m.Compare("in", a, m.ListExpr((lit(1), lit("b"), lit(None), lit(True))))),
    ('{"k": [], "n": {}} == x',
     m.Compare("==", m.ObjectExpr((("k", m.ListExpr(())), ("n", m.ObjectExpr(())))), x)),
    # strings: quotes, backslashes, unicode, and a `#` that is text, not a comment
    (r'x == "say \"hi\""', m.Compare("==", x, lit('say "hi"'))),
    (r'x == "C:\\temp\\"', m.Compare("==", x, lit("C:\\temp\\"))),
    ('x == "订单已发货 📦 ✅"', m.Compare("==", x, lit("订单已发货 📦 ✅"))),
    ('x == "# not a comment"', m.Compare("==", x, lit("# not a comment"))),
    (r'x == "\"#\\"', m.Compare("==", x, lit('"#\\'))),
    (r'x == "line\nbreak\ttab\u0000"', m.Compare("==", x, lit("line\nbreak\ttab\x00"))),
]


def journey_with(audience: str, trailing: str = "") -> str:
    return f'journey "t"\n  audience {audience}{trailing}\n\n  pass\n'


@pytest.mark.parametrize(("source", "expected"), CANONICAL_EXPRESSIONS, ids=[s for s, _ in CANONICAL_EXPRESSIONS])
def test_precedence_and_literals(source: str, expected: m.Expr) -> None:
    text = journey_with(source)
    journey = parse(text)
    assert journey.audience is not None
    assert journey.audience.condition == expected
    assert repr(journey.audience.condition) == repr(expected)
    assert format_journey(journey) == text  # already canonical: printed back unchanged
    assert parse(format_journey(journey)) == journey


@pytest.mark.parametrize(("source", "canonical"), [
    ("((a))", "a"),
    ("(a - b) - c", "a - b - c"),
    ("(not a) == b", "(not a) == b"),
    ("- 1", "-1"),
    ("-(1)", "-1"),
    ("--1", "1"),
    ("-(-1.5)", "1.5"),
    ("1e3 + 2.50", "1000.0 + 2.5"),
    ("1e-7", "0.0000001"),
    ("(a or b) or c", "a or b or c"),
    ("a or (b or c)", "a or (b or c)"),
    ("(x > -2)", "x > -2"),
    ('count of "x" where (a or b) within 2w', 'count of "x" where a or b within 14d'),
    ("x not   in y", "x not in y"),
    (r'"\u00e9\/"', '"é/"'),
    (r'"\ud83d\ude00"', '"😀"'),
    (r'"\ud800"', r'"\ud800"'),
])
def test_non_canonical_expressions_are_normalised(source: str, canonical: str) -> None:
    journey = parse(journey_with(source))
    assert format_journey(journey) == journey_with(canonical)
    assert parse(journey_with(canonical)) == journey


def test_hash_inside_strings_is_not_a_comment_but_after_them_is() -> None:
    text = journey_with('user.tag == "#vip # gold"', '  # the "real" # comment')
    journey = parse(text)
    assert journey.audience == m.Audience(m.Compare("==", p("user", "tag"), lit("#vip # gold")),
                                          comments=m.Comments((), ' the "real" # comment'))
    assert format_journey(journey) == text


def test_the_sample_journey_is_canonical() -> None:
    from .test_fuzz import SAMPLE

    journey = parse(SAMPLE)
    assert format_journey(journey) == SAMPLE
    assert journey.comments.leading == (" Care-solution buyers who never bought lenses get a lens offer.",)
    assert journey.end_comments == (" end",)


# --------------------------------------------------------------------------- regressions


def test_empty_comments_are_kept_and_blank_lines_still_noted() -> None:
    # An empty `#` comment was once taken for the marker of a blank line, and dropped.
    text = '#\njourney "x"\n  trigger api\n\n  #\n  # second\n  pass\n\n  #\n  exit  #\n#\n'
    journey = parse(text)
    assert journey.comments.leading == ("",)
    assert journey.steps[0].comments.leading == ("", " second")
    assert journey.steps[1].comments == m.Comments(("",), "")
    assert journey.steps[1].blank_before
    assert journey.end_comments == ("",)
    assert format_journey(journey) == text


def test_a_raw_surrogate_pair_reads_as_the_character_its_escapes_spell() -> None:
    # Only a `str` can carry raw surrogates; the formatter escapes them, and JSON reads the
    # escaped pair as one character, so the parser must join the raw pair the same way.
    journey = parse('journey "\ud83d\ude00 \ud800"\n  pass\n')
    assert journey.name == "😀 \ud800"
    assert format_journey(journey) == 'journey "😀 \\ud800"\n  pass\n'
    assert parse(format_journey(journey)) == journey


# --------------------------------------------------------------------------- calendar waits, zones, goal exits

DAY = 86_400


def setting_journey(setting: str) -> str:
    return f'journey "t"\n  {setting}\n\n  pass\n'


def step_journey(step: str) -> str:
    return f'journey "t"\n  trigger api\n\n  {step}\n'


@pytest.mark.parametrize(("source", "expected"), [
    ('trigger schedule "30 9 * * *" in user zone', m.ScheduleTrigger("30 9 * * *", "user")),
    ('trigger schedule "0 3 * * *" in journey zone', m.ScheduleTrigger("0 3 * * *", "journey")),
    ('trigger schedule "0 3 * * *"', m.ScheduleTrigger("0 3 * * *", None)),  # not written: stays unwritten
])
def test_schedule_zones_read_and_print_back(source: str, expected: m.ScheduleTrigger) -> None:
    journey = parse(setting_journey(source))
    assert journey.triggers == (expected,)
    assert format_journey(journey) == setting_journey(source)


@pytest.mark.parametrize(("source", "expected"), [
    ('goal "bought" on event "purchase" within 14d then exit',
     m.Goal("bought", "purchase", None, 14 * DAY, then_exit=True)),
    ('goal "bought" on event "purchase" where event.amount > 10 within 14d then exit',
     m.Goal("bought", "purchase", m.Compare(">", p("event", "amount"), lit(10)), 14 * DAY, then_exit=True)),
    ('goal "spent" when user.total_spend >= 100 within 7d then exit',
     m.Goal("spent", None, m.Compare(">=", p("user", "total_spend"), lit(100)), 7 * DAY, then_exit=True)),
    ('goal "bought" on event "purchase" within 14d', m.Goal("bought", "purchase", None, 14 * DAY)),
    ('goal "spent" when user.total_spend >= 100 within 7d',
     m.Goal("spent", None, m.Compare(">=", p("user", "total_spend"), lit(100)), 7 * DAY)),
])
def test_goals_that_end_the_run_read_and_print_back(source: str, expected: m.Goal) -> None:
    journey = parse(setting_journey(source))
    assert journey.goals == (expected,)
    assert format_journey(journey) == setting_journey(source)


@pytest.mark.parametrize(("source", "expected", "canonical"), [
    ("wait 2 days", m.Wait(2 * DAY, calendar=True), "wait 2 days"),
    ("wait 1 day", m.Wait(DAY, calendar=True), "wait 1 day"),
    ("wait 1 days", m.Wait(DAY, calendar=True), "wait 1 day"),
    ("wait 2 day", m.Wait(2 * DAY, calendar=True), "wait 2 days"),
    ("wait 1 week", m.Wait(7 * DAY, calendar=True), "wait 7 days"),
    ("wait 3 weeks", m.Wait(21 * DAY, calendar=True), "wait 21 days"),
    ("wait 2   days", m.Wait(2 * DAY, calendar=True), "wait 2 days"),
    ("wait 36600 days", m.Wait(36_600 * DAY, calendar=True), "wait 36600 days"),
    ("wait 2d", m.Wait(2 * DAY), "wait 2d"),  # exactly 48 hours: not a calendar wait
    ("wait 1w", m.Wait(7 * DAY), "wait 7d"),
    ("@later wait 2 days", m.Wait(2 * DAY, calendar=True, label="later"), "@later wait 2 days"),
])
def test_calendar_waits_read_and_print_canonically(source: str, expected: m.Wait, canonical: str) -> None:
    journey = parse(step_journey(source))
    assert journey.steps == (expected,)
    assert repr(journey.steps) == repr((expected,))
    assert format_journey(journey) == step_journey(canonical)
    assert parse(step_journey(canonical)) == journey


def test_a_calendar_wait_and_an_exact_one_of_the_same_length_differ() -> None:
    calendar, exact = parse(step_journey("wait 2 days\n  wait 48h")).steps
    assert calendar != exact
    assert calendar.seconds == exact.seconds == 2 * DAY


def test_the_new_words_are_still_names_in_expressions() -> None:
    text = setting_journey("audience user.then == 1 and user.zone != user.days and journey.user")
    journey = parse(text)
    assert format_journey(journey) == text
