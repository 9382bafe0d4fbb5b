"""Every rule of expression evaluation, one table each, and the promise behind them all: no
data whatsoever makes a compiled expression raise."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsl
from dsl import model as m
from dsl.validate import FUNCTIONS
from engine import expressions
from engine.expressions import compile_expr, compile_predicate
from engine.scope import EventPredicate, NoHistory, Scope

from .matcher_conformance import ListHistory, StoredEvent

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CST = timezone(timedelta(hours=8))

USER: dict[str, Any] = {
    "stage": "loyal",
    "n": 5,
    "flag": True,
    "tags": ["vip", "member"],
    "tag_set": {"vip"},
    "tag_tuple": ("vip",),
    "address": {"city": "Shanghai", "geo": {"lat": 31.2}},
    "yesterday": NOW - DAY,
    "yesterday_naive": (NOW - DAY).replace(tzinfo=None),
    "yesterday_cst": (NOW - DAY).astimezone(CST),
    "huge": 10**400,
}
EVENT: dict[str, Any] = {"category": "lens", "store": {"region": "east"}, "amount": 120}
RESULTS: dict[str, Any] = {"trial": {"code": "ABC"}, "flat": 5}


def parse_expr(text: str) -> m.Expr:
    """dsl/ parses whole journeys only, so the expression rides in an audience."""
    journey = dsl.parse(f'journey "t"\n  trigger api\n  audience {text}\n\n  pass\n')
    assert journey.audience is not None
    return journey.audience.condition


def scope(user: dict[str, Any] | None = None, event: dict[str, Any] | None = EVENT, **kw: Any) -> Scope:
    return Scope(USER if user is None else user, kw.pop("now", NOW), event, kw.pop("results", RESULTS),
                 kw.pop("history", NoHistory()))


def evaluate(text: str, where: Scope | None = None) -> Any:
    return compile_expr(parse_expr(text))(where or scope())


def same(actual: Any, expected: Any) -> bool:
    """Equal and of the same type: `1 == 1.0 == True` would hide the very rules under test."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return type(actual) is type(expected) and actual == expected


def check(text: str, expected: Any, where: Scope | None = None) -> None:
    actual = evaluate(text, where)
    assert same(actual, expected), f"{text} gave {actual!r}, expected {expected!r}"


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(("text", "expected"), [
    ("user.stage", "loyal"),
    ("user.address.city", "Shanghai"),
    ("user.address.geo.lat", 31.2),
    ("user.missing", None),
    ("user.missing.deeper.still", None),
    ("user.stage.length", None),  # text has no fields
    ("user.tags.first", None),  # nor do lists
    ("user.n.x", None),
    ("event.category", "lens"),
    ("event.store.region", "east"),
    ("event.missing", None),
    ("trial.code", "ABC"),
    ("flat.code", None),
    ("unknown.code", None),
])
def test_paths(text: str, expected: Any) -> None:
    check(text, expected)


@pytest.mark.parametrize("text", ["event.category", "event.store.region"])
def test_event_paths_without_an_event_are_none(text: str) -> None:
    check(text, None, scope(event=None))


def test_a_bare_root_is_the_whole_mapping() -> None:
    assert compile_expr(m.Path(("user",)))(scope()) is USER
    assert compile_expr(m.Path(("trial",)))(scope()) == {"code": "ABC"}


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(("text", "expected"), [
    ('"vip"', "vip"),
    ('"会员"', "会员"),
    ("100", 100),
    ("99.5", 99.5),
    ("-1", -1),
    ("1e3", 1000.0),
    ("true", True),
    ("false", False),
    ("null", None),
    ("30d", 30 * 86400),
    ("1h30m", 5400),
    ('[1, "a", null, user.stage]', [1, "a", None, "loyal"]),
    ("[]", []),
    ('{"a": 1, "who": user.stage, "list": [event.amount]}', {"a": 1, "who": "loyal", "list": [120]}),
    ("{}", {}),
])
def test_literals(text: str, expected: Any) -> None:
    check(text, expected)


def test_lists_and_objects_are_fresh_each_time() -> None:
    compiled = compile_expr(parse_expr('[{"a": 1}]'))
    first = compiled(scope())
    first[0]["a"] = 2
    assert compiled(scope()) == [{"a": 1}]


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(("text", "expected"), [
    ("1 == 1.0", True),
    ("1 == 2", False),
    ("1 != 2", True),
    ("true == 1", False),
    ("false == 0", False),
    ("true != 1", True),
    ("user.flag == true", True),
    ('"1" == 1', False),
    ('"a" == "a"', True),
    ("null == null", True),
    ("user.missing == null", True),
    ("user.missing != null", False),
    ("user.missing == false", False),
    ("[1, 2] == [1.0, 2]", True),
    ("[true] == [1]", False),
    ("user.tag_tuple == [\"vip\"]", True),  # one kind of sequence
    ('{"a": 1} == {"a": 1.0}', True),
    ('{"a": true} == {"a": 1}', False),
    ('{"a": 1} == {"b": 1}', False),
    ("user.yesterday == user.yesterday_naive", True),  # naive means UTC
    ("user.yesterday == user.yesterday_cst", True),
    ("user.yesterday == now()", False),
])
def test_equality(text: str, expected: bool) -> None:
    check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("2 < 3", True),
    ("2 < 2.5", True),
    ("3 <= 3.0", True),
    ("3 > 3", False),
    ("3 >= 3", True),
    ('"a" < "b"', True),
    ('"b" >= "a"', True),
    ('"10" < 9', False),
    ('1 < "2"', False),
    ('1 > "0"', False),
    ("null < 1", False),
    ("1 > null", False),
    ("null >= null", False),
    ("true < 2", False),  # a bool is not a number
    ("0 <= false", False),
    ("[1] < [2]", False),
    ("user.yesterday < now()", True),
    ("user.yesterday_naive < now()", True),
    ("user.yesterday_cst >= user.yesterday_naive", True),
    ('user.yesterday < "2999-01-01"', False),  # a time is not text
    ("user.huge > 1e300", True),
])
def test_ordering(text: str, expected: bool) -> None:
    check(text, expected)


@pytest.mark.parametrize(("text", "expected"), [
    ('"a" in ["a", "b"]', True),
    ('"c" in ["a", "b"]', False),
    ("1 in [1.0]", True),
    ("true in [1]", False),
    ("1 in [true]", False),
    ("[1] in [[1], [2]]", True),
    ('"ell" in "hello"', True),
    ('"" in "hello"', True),
    ('1 in "1"', False),
    ('"1" in 1', False),
    ('"x" in null', False),
    ('"x" not in null', True),
    ('"x" in {"x": 1}', False),  # not the keys of an object
    ('"x" not in {"x": 1}', True),
    ('"vip" in user.tag_set', True),
    ('"vip" in user.tag_tuple', True),
    ('"vip" not in user.tags', False),
    ('"gold" not in user.tags', True),
    ('user.tags contains "vip"', True),
    ('user.tags contains "gold"', False),
    ('"hello" contains "ell"', True),
    ('null contains "a"', False),
    ('"a" contains null', False),
    ("[[1]] contains [1]", True),
])
def test_membership(text: str, expected: bool) -> None:
    check(text, expected)


# --------------------------------------------------------------------------- logic


@pytest.mark.parametrize(("text", "expected"), [
    ("true and false", False),
    ("true and true", True),
    ('1 and "x"', True),
    ('0 or ""', False),
    ("null or [1]", True),
    ("not null", True),
    ("not []", True),
    ('not "x"', False),
    ("not 0.0", True),
    ("user.stage and user.n", True),
    ("user.missing or user.flag", True),
])
def test_logic_gives_bools_by_truthiness(text: str, expected: bool) -> None:
    check(text, expected)


class RecordingHistory:
    """A `History` that answers a fixed number and remembers how it was asked."""

    def __init__(self, answer: int = 0) -> None:
        self.answer = answer
        self.calls: list[tuple[str, EventPredicate | None, datetime | None]] = []

    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        self.calls.append((event, where, since))
        return self.answer


@pytest.mark.parametrize(("text", "expected"), [
    ('false and count of "x" ever > 0', False),
    ('true or count of "x" ever > 0', True),
    ('user.missing and count of "x" ever > 0', False),
    ('user.stage or count of "x" ever > 0', True),
])
def test_logic_short_circuits(text: str, expected: bool) -> None:
    history = RecordingHistory(5)
    check(text, expected, scope(history=history))
    assert history.calls == []


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(("text", "expected"), [
    ("1 + 2", 3),
    ("1.5 * 2", 3.0),
    ("7 / 2", 3.5),
    ("10 - 2.5", 7.5),
    ("2d - 1h", 2 * 86400 - 3600),
    ("user.n * 2 + 1", 11),
    ("-user.n", -5),
    ("1 / 0", None),
    ("1 / 0.0", None),
    ("0 / 0", None),
    ('"a" + "b"', None),
    ("1 + true", None),
    ("true * 2", None),
    ("1 + null", None),
    ("null - 1", None),
    ("[1] + [2]", None),
    ('-"x"', None),
    ("-true", None),
    ("-null", None),
    ("-user.tags", None),
    ("user.huge + 0.5", None),  # too big for a float: overflow is a bad mix too
    ("user.huge / 3", None),
    ("now() - user.yesterday", 86400.0),
    ("now() - user.yesterday_naive", 86400.0),
    ("user.yesterday_cst - user.yesterday", 0.0),
    ("now() - user.yesterday > 1d - 1", True),
    ("user.yesterday + 1d == now()", True),
    ("1d + user.yesterday == now()", True),
    ("now() - 1d == user.yesterday", True),
    ("now() + user.yesterday", None),
    ("1 - now()", None),
    ("now() * 2", None),
    ("now() / 2", None),
    ('now() - "2025-01-01"', None),
    ("now() + 999999999999999", None),  # past year 9999
    ("now() + user.huge", None),
])
def test_arithmetic(text: str, expected: Any) -> None:
    check(text, expected)


def test_time_plus_seconds_is_a_time() -> None:
    assert evaluate("user.yesterday + 3600") == NOW - DAY + timedelta(hours=1)
    assert evaluate("user.yesterday - 1.5") == NOW - DAY - timedelta(seconds=1.5)


# --------------------------------------------------------------------------- functions

EPOCH_YESTERDAY = int(NOW.timestamp()) - 86400


@pytest.mark.parametrize(("text", "expected"), [
    ("exists(user.stage)", True),
    ("exists(user.missing)", False),
    ("exists(user.missing.deeper)", False),
    ("exists(false)", True),
    ("exists(0)", True),
    ('exists("")', True),
    ("exists(null)", False),
    ('lower("AbC")', "abc"),
    ("lower(1)", None),
    ("lower(null)", None),
    ('upper("abc")', "ABC"),
    ("upper(user.tags)", None),
    ('len("abc")', 3),
    ('len("会员")', 2),
    ("len([1, 2])", 2),
    ('len({"a": 1})', 1),
    ("len(user.tag_tuple)", 1),
    ("len(5)", 0),
    ("len(null)", 0),
    ("len(true)", 0),
    ("now() == now()", True),
    ("days_since(user.yesterday)", 1.0),
    ("days_since(user.yesterday_naive)", 1.0),
    ("days_since(user.yesterday_cst)", 1.0),
    ('days_since("2025-02-27T12:00:00Z")', 2.0),
    ('days_since("2025-02-27T12:00:00+00:00")', 2.0),
    ('days_since("2025-02-27T20:00:00+08:00")', 2.0),
    ('days_since("2025-02-27T12:00:00")', 2.0),  # naive ISO text is UTC
    ('days_since("2025-02-27")', 2.5),
    ('days_since("2025-02-28T00:00:00Z")', 1.5),
    ('days_since("2025-03-02T12:00:00Z")', -1.0),  # the future is negative
    (f"days_since({EPOCH_YESTERDAY})", 1.0),
    (f"days_since({EPOCH_YESTERDAY}.0)", 1.0),
    ('days_since("yesterday")', None),
    ('days_since("")', None),
    ("days_since(true)", None),
    ("days_since(null)", None),
    ("days_since(user.missing)", None),
    ("days_since([1])", None),
    ("days_since(user.huge)", None),
    ("days_since(1e308 * 10)", None),  # the product is inf
])
def test_functions(text: str, expected: Any) -> None:
    check(text, expected)


def test_now_is_the_scope_now() -> None:
    assert evaluate("now()") is NOW


def test_every_function_of_the_language_is_implemented() -> None:
    for name, arity in FUNCTIONS.items():
        compiled = compile_expr(m.Call(name, (m.Lit("x"),) * arity))
        compiled(scope())


@pytest.mark.parametrize("call", [
    m.Call("shout", (m.Lit("x"),)),
    m.Call("now", (m.Lit(1),)),
    m.Call("lower", ()),
    m.Call("len", (m.Lit("a"), m.Lit("b"))),
])
def test_unknown_functions_fail_at_compile_time(call: m.Call) -> None:
    with pytest.raises(ValueError, match="not a function"):
        compile_expr(call)


# --------------------------------------------------------------------------- history


def test_count_within_a_window_asks_since_now_minus_the_window() -> None:
    history = RecordingHistory(3)
    check('count of "purchase" within 30d', 3, scope(history=history))
    assert history.calls == [("purchase", None, NOW - timedelta(days=30))]


def test_count_ever_asks_without_since() -> None:
    history = RecordingHistory(2)
    check('count of "purchase" ever >= 2', True, scope(history=history))
    assert history.calls == [("purchase", None, None)]


def test_count_where_binds_event_to_each_stored_events_properties() -> None:
    history = RecordingHistory()
    evaluate('count of "purchase" where event.amount >= user.n and event.code == trial.code ever',
             scope(history=history))
    (_, where, _), = history.calls
    assert where is not None
    assert where({"amount": 5, "code": "ABC"}) is True
    assert where({"amount": 4, "code": "ABC"}) is False
    assert where({"amount": 9, "code": "XYZ"}) is False
    assert where({}) is False


def test_counts_against_an_in_memory_history() -> None:
    history = ListHistory(
        StoredEvent("purchase", NOW - 40 * DAY, {"category": "lens"}),
        StoredEvent("purchase", NOW - 3 * DAY, {"category": "lens"}),
        StoredEvent("purchase", NOW - 2 * DAY, {"category": "care"}),
        StoredEvent("refund", NOW - 1 * DAY, {"category": "lens"}),
    )
    where = scope(history=history)
    check('count of "purchase" ever', 3, where)
    check('count of "purchase" within 30d', 2, where)
    check('count of "purchase" where event.category == "lens" ever', 2, where)
    check('count of "purchase" where event.category == "lens" within 30d', 1, where)
    check('count of "purchase" where count of "refund" ever == 1 ever', 3, where)


def test_a_window_longer_than_the_calendar_counts_everything() -> None:
    for window in (10**15, 4000 * 365 * 86400):
        history = RecordingHistory()
        compile_expr(m.History("x", None, window))(scope(history=history))
        assert history.calls == [("x", None, None)]


# --------------------------------------------------------------------------- predicates


@pytest.mark.parametrize(("expr", "expected"), [
    (None, True),
    (m.Path(("user", "stage")), True),
    (m.Path(("user", "missing")), False),
    (m.Lit(0), False),
    (m.Lit("x"), True),
    (m.ListExpr(()), False),
    (m.Unary("-", m.Lit(1)), True),
    (m.Unary("-", m.Lit("x")), False),
    (parse_expr("1 < 2"), True),
    (parse_expr("not user.stage"), False),
    (parse_expr("user.stage and user.n"), True),
])
def test_predicates_are_bools_by_truthiness(expr: m.Expr | None, expected: bool) -> None:
    assert compile_predicate(expr)(scope()) is expected


def test_the_tree_is_walked_once_at_compile_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = compile_predicate(parse_expr(
        '(user.n + 1) * 2 > 3 and lower(user.stage) in ["loyal"] and count of "x" where event.a == 1 ever == 0'))

    def no_more_compiling(expr: m.Expr) -> Any:
        raise AssertionError("compiled during evaluation")

    monkeypatch.setattr(expressions, "compile_expr", no_more_compiling)
    monkeypatch.setattr(expressions, "compile_predicate", no_more_compiling)
    history = ListHistory(StoredEvent("x", NOW, {"a": 2}))
    assert compiled(scope(history=history)) is True


# --------------------------------------------------------------------------- no data makes it raise

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```journey[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_EXPRESSION_TYPES = (m.Lit, m.Dur, m.Path, m.Call, m.Unary, m.Binary, m.Compare, m.ListExpr, m.ObjectExpr,
                     m.History)

EXTRA_CONDITIONS = (
    "(user.total_spend + event.amount) * 2 >= 1000 and not (user.stage == \"lost\" or user.points - 100 < 0)",
    "now() - user.last_login_at > 1d and -user.points < 0 and user.points / user.orders > 2",
    'upper(user.country) == "CN" and len(user.tags) > 0 and lower(event.category) in ["lens", user.stage]',
    'user.tags contains event.category or event.category not in user.tags or event.store.region == user.region',
    'count of "purchase" where event.amount >= user.points and days_since(event.at) < 30 within 365d >= 1',
    'days_since(user.signup_at) >= 7 and exists(user.wechat_openid) and {"a": user.a} == {"a": event.a}',
)


def _expressions_in(value: Any) -> Iterator[m.Expr]:
    if isinstance(value, _EXPRESSION_TYPES):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _expressions_in(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _expressions_in(item)


def _paths_in(expr: Any) -> Iterator[tuple[str, ...]]:
    if isinstance(expr, m.Path):
        yield expr.parts
    elif is_dataclass(expr) and not isinstance(expr, type):
        for f in fields(expr):
            yield from _paths_in(getattr(expr, f.name))
    elif isinstance(expr, tuple):
        for item in expr:
            yield from _paths_in(item)


def _example_conditions() -> list[m.Expr]:
    texts = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "examples" / "journeys").glob("*.journey"))]
    texts += [found.group(1) for found in _FENCE.finditer((ROOT / "docs" / "dsl.md").read_text(encoding="utf-8"))]
    found = [expr for text in texts for expr in _expressions_in(dsl.parse(text))]
    return found + [parse_expr(text) for text in EXTRA_CONDITIONS]


EXAMPLES = _example_conditions()
FIELD_NAMES = sorted({part for expr in EXAMPLES for parts in _paths_in(expr) for part in parts[1:]})
RESULT_NAMES = sorted({parts[0] for expr in EXAMPLES for parts in _paths_in(expr)} - {"user", "event"})


def test_the_examples_give_the_property_something_to_chew_on() -> None:
    assert len(EXAMPLES) > 100
    assert {"tags", "category", "amount", "last_purchase_at"} <= set(FIELD_NAMES)


_times = st.datetimes(timezones=st.none() | st.just(UTC) | st.just(CST))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(),
    st.text(max_size=8), st.sampled_from(["lens", "vip", "unsubscribed", "store", "2025-01-01", "2025-02-27T12:00Z"]),
    _times, _times.map(datetime.isoformat),
)
_keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=4)
json_like = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=12,
)
records = st.dictionaries(_keys, json_like, max_size=8)
histories = st.lists(st.builds(StoredEvent, st.sampled_from(["purchase", "signup", "coupon_redeemed"]), _times.map(
    lambda t: t.replace(tzinfo=UTC)), records), max_size=4).map(lambda events: ListHistory(*events))


@dataclass(frozen=True)
class _World:
    user: dict[str, Any]
    event: dict[str, Any] | None
    results: dict[str, Any]
    history: ListHistory
    now: datetime


worlds = st.builds(
    _World,
    user=records,
    event=st.none() | records,
    results=st.dictionaries(st.sampled_from(RESULT_NAMES or ["r"]), json_like, max_size=3),
    history=histories,
    now=st.datetimes(timezones=st.just(UTC)),
)


def _run(expr: m.Expr, world: _World) -> None:
    where = Scope(world.user, world.now, world.event, world.results, world.history)
    compile_expr(expr)(where)
    assert isinstance(compile_predicate(expr)(where), bool)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EXAMPLES), worlds)
def test_example_conditions_never_raise(expr: m.Expr, world: _World) -> None:
    _run(expr, world)


_leaf_exprs = st.one_of(
    st.builds(m.Lit, st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)),
    st.builds(m.Dur, st.integers(min_value=1, max_value=10**16)),
    st.builds(m.Path, st.tuples(st.sampled_from(["user", "event", *RESULT_NAMES])).flatmap(
        lambda root: st.lists(st.sampled_from(FIELD_NAMES), max_size=2).map(lambda rest: (*root, *rest)))),
    st.just(m.Call("now", ())),
)


def _grow(children: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Expr]:
    return st.one_of(
        st.builds(m.Unary, st.sampled_from(["not", "-"]), children),
        st.builds(m.Binary, st.sampled_from(["or", "and", "+", "-", "*", "/"]), children, children),
        st.builds(m.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]),
                  children, children),
        st.builds(m.Call, st.sampled_from([n for n, arity in FUNCTIONS.items() if arity == 1]), st.tuples(children)),
        st.builds(m.ListExpr, st.lists(children, max_size=3).map(tuple)),
        st.builds(m.ObjectExpr, st.lists(st.tuples(st.text(max_size=3), children), max_size=3).map(tuple)),
        st.builds(m.History, st.sampled_from(["purchase", "signup"]), st.none() | children,
                  st.none() | st.integers(min_value=1, max_value=10**16)),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_leaf_exprs, _grow, max_leaves=10), worlds)
def test_random_expressions_never_raise(expr: m.Expr, world: _World) -> None:
    _run(expr, world)


# Values where Python's `==` and the language's part ways (True == 1, 1 == 1.0, "1" != 1).
_TRICKY = st.sampled_from([True, False, 0, 1, 1.0, 0.0, "1", "", None, [1], {"x": 1}, float("nan")])
_literals = st.sampled_from([0, 1, 1.0, "1", ""]) | st.text(max_size=4) | st.integers() | st.floats() | st.integers(
    min_value=-(2 ** 70), max_value=2 ** 70)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["==", "!="]), st.sampled_from([("user", "x"), ("event", "x"), ("r",), ("user", "x", "y")]),
       _literals, _TRICKY | json_like)
def test_a_comparison_with_a_literal_agrees_with_the_general_operator(op: str, path: tuple[str, ...],
                                                                      literal: Any, value: Any) -> None:
    """`user.x == "text"` and `event.total != 3` are built in a shorter form than the general
    `_equal` (expressions.py); on any value, of any type, they must answer the same."""
    nested: Any = value
    for key in reversed(path[1:]):
        nested = {key: nested}
    world = {"user": nested if path[0] == "user" else {}, "event": nested if path[0] == "event" else None,
             "results": {"r": value} if path[0] == "r" else {}}
    where = Scope(world["user"], datetime(2026, 1, 1, tzinfo=UTC), world["event"], world["results"])
    expected = expressions._OPERATORS[op](value, literal)
    assert compile_expr(m.Compare(op, m.Path(path), m.Lit(literal)))(where) is expected


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["in", "not in"]), st.lists(st.text(max_size=3), min_size=1, max_size=4), _TRICKY | json_like)
def test_membership_in_a_list_of_literal_texts_agrees_with_the_general_operator(op: str, texts: list[str],
                                                                              value: Any) -> None:
    where = Scope({"x": value}, datetime(2026, 1, 1, tzinfo=UTC))
    literal_list = m.ListExpr(tuple(m.Lit(t) for t in texts))
    expected = expressions._OPERATORS[op](value, list(texts))
    assert compile_expr(m.Compare(op, m.Path(("user", "x")), literal_list))(where) is expected
