"""What every `Matcher` backend must do, written once.

A backend's test module runs the whole suite with a star import and one fixture:

    from .matcher_conformance import *  # noqa: F403

    @pytest.fixture
    def matcher_factory() -> MatcherFactory:
        return MyMatcher

The factory returns a fresh matcher with nothing loaded. This file's name does not start with
`test_`, so pytest collects its tests only where a backend provides the factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import dsl
from engine.matcher import Decisions, Matcher
from engine.scope import EventPredicate, History, NoHistory, Scope

MatcherFactory = Callable[[], Matcher]

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class StoredEvent:
    name: str
    at: datetime
    properties: Mapping[str, Any]


class ListHistory:
    """The `History` a test needs: a list of past events, filtered as storage would."""

    def __init__(self, *events: StoredEvent) -> None:
        self.events = events

    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        return sum(1 for e in self.events
                   if e.name == event and (since is None or e.at >= since) and (where is None or where(e.properties)))


def journey(*settings: str, steps: str = "  pass") -> dsl.CompiledJourney:
    header = "\n".join(f"  {line}" for line in settings)
    return dsl.compile_source(f'journey "J"\n{header}\n\n{steps}\n')


def loaded(factory: MatcherFactory, **journeys: dsl.CompiledJourney) -> Matcher:
    matcher = factory()
    matcher.load(journeys)
    return matcher


def scope(user: Mapping[str, Any] | None = None, event: Mapping[str, Any] | None = None,
          history: History | None = None, results: Mapping[str, Any] | None = None) -> Scope:
    return Scope(user or {}, NOW, event, results or {}, history or NoHistory())


WELCOME = journey('trigger event "signup" where event.channel == "store"',
                  'audience "unsubscribed" not in user.tags')
WAITS = journey(
    'trigger event "signup"',
    steps='''  @looked wait for event "product_viewed" where event.category == "lens" up to 5d:
    received:
      pass
    timeout:
      pass
  @bought wait for event "purchase" up to 7d:
    received:
      pass
    timeout:
      pass
  @looked_again wait for event "product_viewed" up to 5d:
    received:
      pass
    timeout:
      pass''')


# --------------------------------------------------------------------------- triggers


@pytest.mark.parametrize(("event", "enters"), [
    ({"channel": "store"}, True),
    ({"channel": "app"}, False),
    ({}, False),
])
def test_event_trigger_enters_when_its_where_holds(matcher_factory: MatcherFactory, event: dict[str, Any],
                                                   enters: bool) -> None:
    matcher = loaded(matcher_factory, welcome=WELCOME)
    decisions = matcher.on_event("signup", scope({"tags": []}, event))
    assert decisions.enter == ({"welcome"} if enters else set())


@pytest.mark.parametrize(("user", "enters"), [
    ({"tags": ["member"]}, True),
    ({"tags": ["member", "unsubscribed"]}, False),
    ({}, True),  # no tags at all: "unsubscribed" not in null
])
def test_audience_gates_event_entries(matcher_factory: MatcherFactory, user: dict[str, Any], enters: bool) -> None:
    matcher = loaded(matcher_factory, welcome=WELCOME)
    assert matcher.on_event("signup", scope(user, {"channel": "store"})).enter == ({"welcome"} if enters else set())


def test_an_event_no_journey_mentions_decides_nothing(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, welcome=WELCOME, waits=WAITS)
    assert matcher.on_event("logout", scope({"tags": []}, {"channel": "store"})) == Decisions()


def test_several_journeys_on_one_event(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(
        matcher_factory,
        any_purchase=journey('trigger event "purchase"'),
        lens=journey('trigger event "purchase" where event.category == "lens"'),
        care=journey('trigger event "purchase" where event.category == "care_solution"'),
        big=journey('trigger event "purchase" where event.amount >= 1000'),
        signup=journey('trigger event "signup"'),
    )
    decisions = matcher.on_event("purchase", scope(event={"category": "lens", "amount": 1200}))
    assert decisions.enter == {"any_purchase", "lens", "big"}


def test_any_of_several_triggers_enters(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, j=journey('trigger event "purchase" where event.amount > 100',
                                                'trigger event "purchase" where event.vip == true',
                                                'trigger event "signup"'))
    assert matcher.on_event("purchase", scope(event={"amount": 5, "vip": True})).enter == {"j"}
    assert matcher.on_event("purchase", scope(event={"amount": 5})).enter == set()
    assert matcher.on_event("signup", scope(event={})).enter == {"j"}


def test_condition_triggers_do_not_enter_on_events(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, upgrade=journey("trigger when user.total_spend >= 3000"))
    assert matcher.on_event("purchase", scope({"total_spend": 5000}, {})).enter == set()


# --------------------------------------------------------------------------- exits and goals

WIN_BACK = journey(
    "trigger when days_since(user.last_purchase_at) >= 60",
    'exit on event "purchase" where event.amount > 0',
    'exit when "unsubscribed" in user.tags',
)


@pytest.mark.parametrize(("user", "name", "event", "exits"), [
    ({"tags": []}, "purchase", {"amount": 10}, True),
    ({"tags": []}, "purchase", {"amount": 0}, False),
    ({"tags": []}, "refund", {"amount": 10}, False),
    ({"tags": ["unsubscribed"]}, "refund", {}, True),  # `exit when` is checked on any event
    ({"tags": ["unsubscribed"]}, "purchase", {"amount": 0}, True),
])
def test_exit_on_event_and_exit_when(matcher_factory: MatcherFactory, user: dict[str, Any], name: str,
                                     event: dict[str, Any], exits: bool) -> None:
    matcher = loaded(matcher_factory, win_back=WIN_BACK)
    assert matcher.on_event(name, scope(user, event)).exit == ({"win_back"} if exits else set())


GOALS = journey(
    'trigger event "signup"',
    'goal "bought lenses" on event "purchase" where event.category == "lens" within 30d',
    'goal "came back" on event "purchase" within 30d',
    'goal "bound WeChat" when exists(user.wechat_openid) within 14d',
)


def test_event_goals_and_when_goals(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, g=GOALS)
    lens = matcher.on_event("purchase", scope({}, {"category": "lens"}))
    assert lens.goals == {("g", "bought lenses"), ("g", "came back")}
    bound = matcher.on_event("purchase", scope({"wechat_openid": "o1"}, {"category": "care"}))
    assert bound.goals == {("g", "came back"), ("g", "bound WeChat")}
    assert matcher.on_event("page_view", scope({"wechat_openid": "o1"}, {})).goals == {("g", "bound WeChat")}
    assert matcher.on_event("page_view", scope({}, {})).goals == set()


def test_a_journey_mentioning_an_event_only_in_a_goal_is_not_entered(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, g=GOALS)
    decisions = matcher.on_event("purchase", scope({}, {"category": "lens"}))
    assert decisions.enter == set() and decisions.exit == set() and decisions.waits == set()


# --------------------------------------------------------------------------- waits


@pytest.mark.parametrize(("name", "event", "waits"), [
    ("product_viewed", {"category": "lens"}, {("waits", "looked"), ("waits", "looked_again")}),
    ("product_viewed", {"category": "frames"}, {("waits", "looked_again")}),
    ("purchase", {}, {("waits", "bought")}),
    ("signup", {}, set()),
])
def test_waits_match_by_journey_and_node_id(matcher_factory: MatcherFactory, name: str, event: dict[str, Any],
                                            waits: set[tuple[str, str]]) -> None:
    matcher = loaded(matcher_factory, waits=WAITS, other=WELCOME)
    assert matcher.on_event(name, scope({}, event)).waits == waits


def test_the_same_wait_in_two_journeys(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, v1=WAITS, v2=WAITS)
    assert matcher.on_event("purchase", scope({}, {})).waits == {("v1", "bought"), ("v2", "bought")}


# --------------------------------------------------------------------------- profile changes


def test_on_profile_change(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(
        matcher_factory,
        upgrade=journey("trigger when user.total_spend >= 3000", 'audience "vip" not in user.tags'),
        win_back=WIN_BACK,
        goals=GOALS,
        welcome=WELCOME,
        waits=WAITS,
    )
    user = {"total_spend": 3500, "tags": ["unsubscribed"], "wechat_openid": "o1",
            "last_purchase_at": "2024-01-01T00:00:00Z"}
    decisions = matcher.on_profile_change(scope(user))
    assert decisions == Decisions(enter=frozenset({"upgrade", "win_back"}), exit=frozenset({"win_back"}),
                                  goals=frozenset({("goals", "bound WeChat")}))


@pytest.mark.parametrize(("user", "enters"), [
    ({"total_spend": 3000, "tags": []}, True),
    ({"total_spend": 2999, "tags": []}, False),
    ({"total_spend": 5000, "tags": ["vip"]}, False),  # the audience gates condition entries too
    ({"total_spend": "5000"}, False),  # text is not a number
    ({}, False),
])
def test_condition_trigger_and_audience(matcher_factory: MatcherFactory, user: dict[str, Any], enters: bool) -> None:
    matcher = loaded(matcher_factory,
                     upgrade=journey("trigger when user.total_spend >= 3000", 'audience "vip" not in user.tags'))
    assert matcher.on_profile_change(scope(user)).enter == ({"upgrade"} if enters else set())


def test_profile_changes_never_end_waits_nor_enter_by_event(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, waits=WAITS, welcome=WELCOME)
    assert matcher.on_profile_change(scope({"tags": []})) == Decisions()


@pytest.mark.parametrize(("user", "holds"), [({"tags": ["member"]}, True), ({"tags": ["unsubscribed"]}, False)])
def test_audience_holds_for_api_and_schedule_entries(matcher_factory: MatcherFactory, user: dict[str, Any],
                                                     holds: bool) -> None:
    matcher = loaded(
        matcher_factory,
        api=journey("trigger api", 'audience "unsubscribed" not in user.tags'),
        weekly=journey('trigger schedule "0 10 * * 4"', 'audience "unsubscribed" not in user.tags'),
        open=journey("trigger api"),
    )
    assert matcher.audience_holds("api", scope(user)) is holds
    assert matcher.audience_holds("weekly", scope(user)) is holds
    assert matcher.audience_holds("open", scope(user)) is True


def test_audience_of_an_unknown_journey_is_an_error(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, welcome=WELCOME)
    with pytest.raises(KeyError):
        matcher.audience_holds("nope", scope())


# --------------------------------------------------------------------------- loading


def test_reloading_replaces_the_journeys(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, welcome=WELCOME, win_back=WIN_BACK, g=GOALS)
    matcher.load({"waits": WAITS})
    user = {"tags": ["unsubscribed"], "wechat_openid": "o1"}
    assert matcher.on_event("signup", scope(user, {"channel": "store"})) == Decisions(enter=frozenset({"waits"}))
    assert matcher.on_profile_change(scope(user)) == Decisions()
    with pytest.raises(KeyError):
        matcher.audience_holds("welcome", scope())


def test_the_same_journey_under_two_keys(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, v1=WELCOME, v2=WELCOME)
    assert matcher.on_event("signup", scope({}, {"channel": "store"})).enter == {"v1", "v2"}


def test_an_empty_matcher_decides_nothing(matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory)
    assert matcher.on_event("signup", scope()) == Decisions()
    assert matcher.on_profile_change(scope()) == Decisions()


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(("where", "event", "user", "enters"), [
    ('event.channel in ["store", "app"]', {"channel": "app"}, {}, True),
    ('event.channel in ["store", "app"]', {"channel": "web"}, {}, False),
    ('event.channel not in ["store", "app"]', {"channel": "web"}, {}, True),
    ('event.channel not in ["store", "app"]', {}, {}, True),
    ('"lens" in event.name', {"name": "daily lens 30"}, {}, True),
    ('user.tags contains "vip"', {}, {"tags": ["vip", "member"]}, True),
    ('user.tags contains "vip"', {}, {"tags": ["member"]}, False),
    ('user.tags contains "vip"', {}, {"tags": "member,vip"}, True),  # text contains text
    ('user.tags contains "vip"', {}, {"tags": {"vip": True}}, False),  # not keys of an object
    ('user.tags contains "vip"', {}, {}, False),
    ("event.sku in user.wishlist", {"sku": 42}, {"wishlist": [41, 42.0]}, True),
    ("event.sku in user.wishlist", {"sku": True}, {"wishlist": [1]}, False),
])
def test_membership_conditions(matcher_factory: MatcherFactory, where: str, event: dict[str, Any],
                               user: dict[str, Any], enters: bool) -> None:
    matcher = loaded(matcher_factory, j=journey(f'trigger event "e" where {where}'))
    assert matcher.on_event("e", scope(user, event)).enter == ({"j"} if enters else set())


LENS_HISTORY = ListHistory(
    StoredEvent("purchase", NOW - 100 * DAY, {"category": "lens", "amount": 300}),
    StoredEvent("purchase", NOW - 10 * DAY, {"category": "care_solution", "amount": 60}),
    StoredEvent("purchase", NOW - 2 * DAY, {"category": "care_solution", "amount": 80}),
    StoredEvent("page_view", NOW - 1 * DAY, {"category": "lens"}),
)


@pytest.mark.parametrize(("condition", "enters"), [
    ('count of "purchase" ever == 3', True),
    ('count of "purchase" within 30d == 2', True),
    ('count of "purchase" where event.category == "lens" ever == 1', True),
    ('count of "purchase" where event.category == "lens" within 30d == 0', True),
    ('count of "purchase" where event.amount >= user.big_spend within 365d == 1', True),
    ('count of "purchase" where event.category == "care_solution" within 5d >= 2', False),
    ('count of "page_view" ever == 1', True),
    ('count of "refund" ever > 0', False),
])
def test_history_counts(matcher_factory: MatcherFactory, condition: str, enters: bool) -> None:
    matcher = loaded(matcher_factory, j=journey('trigger event "purchase"', f"audience {condition}"))
    decisions = matcher.on_event("purchase", scope({"big_spend": 100}, {"category": "care_solution"}, LENS_HISTORY))
    assert decisions.enter == ({"j"} if enters else set())


def test_history_counts_in_a_trigger_where_see_the_stored_event_not_the_current_one(
        matcher_factory: MatcherFactory) -> None:
    matcher = loaded(matcher_factory, j=journey(
        'trigger event "purchase" where event.category == "lens" and count of "purchase" '
        'where event.category == "lens" ever == 1'))
    assert matcher.on_event("purchase", scope({}, {"category": "lens"}, LENS_HISTORY)).enter == {"j"}


@pytest.mark.parametrize(("user", "event"), [
    ({}, {}),
    ({"tags": None, "total_spend": None, "address": "flat"}, {"category": None, "amount": "lots"}),
    ({"tags": 7, "total_spend": [], "address": {"city": 3}}, {"category": ["lens"], "amount": {"x": 1}}),
])
def test_missing_and_ill_typed_fields_are_quietly_false(matcher_factory: MatcherFactory, user: dict[str, Any],
                                                        event: dict[str, Any]) -> None:
    matcher = loaded(
        matcher_factory,
        a=journey('trigger event "purchase" where event.category == "lens" and event.amount > 10',
                  'audience user.address.city == "Shanghai"'),
        b=journey('trigger event "purchase" where lower(event.category) == "lens"',
                  'exit when user.total_spend > 100',
                  'goal "big" on event "purchase" where event.amount * 2 > 100 within 7d'),
        c=journey('trigger when "vip" in user.tags and days_since(user.signup_at) > 1'),
    )
    assert matcher.on_event("purchase", scope(user, event)) == Decisions()
    assert matcher.on_event("purchase", scope(user, None)) == Decisions()
    assert matcher.on_profile_change(scope(user)) == Decisions()
