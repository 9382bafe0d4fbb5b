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
