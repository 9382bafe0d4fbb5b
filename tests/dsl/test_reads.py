"""What conditions read: the index that decides which profile changes re-evaluate which journeys."""

from __future__ import annotations

from dsl import compile_source
from dsl import model as m
from dsl.reads import Reads, changed_fields, expr_reads, profile_conditions


def reads(text: str) -> Reads:
    """What a condition reads, the condition written as a journey's `trigger when`."""
    [trigger] = compile_source(f'journey "t"\n  trigger when {text}\n\n  send sms "hi"\n').triggers
    assert isinstance(trigger, m.ConditionTrigger)
    return expr_reads(trigger.condition)


def test_a_path_reads_its_first_field_and_a_count_reads_its_event() -> None:
    assert reads('user.address.city == "sh" and "vip" in user.tags') == Reads(frozenset({"address", "tags"}))
    assert reads('count of "purchase" where event.amount > user.limit within 30d >= 2') == Reads(
        frozenset(), frozenset({"purchase"}))  # the filter reads the counted events, not the profile
    assert reads("days_since(user.last_purchase_at) >= 60 or exists(user.phone)") == Reads(
        frozenset({"last_purchase_at", "phone"}))
    assert reads("days_since(now()) > 3") == Reads()


def test_a_journeys_profile_conditions_by_role() -> None:
    journey = compile_source('''journey "t"
  trigger when user.total_spend >= 3000 or count of "purchase" within 365d >= 6
  audience "vip" not in user.tags and count of "refund" ever == 0
  exit when user.stage == "lost"
  goal "spent" when user.total_spend >= 5000 within 30d
  goal "bought" on event "purchase" within 30d

  send sms "hi"
''')
    found = profile_conditions(journey)
    assert found.enter == Reads(frozenset({"total_spend", "tags"}), frozenset({"purchase", "refund"}))
    assert found.counted == frozenset({"purchase"})  # what the audience counts enters no one
    assert found.exit == Reads(frozenset({"stage"}))
    assert found.goals == Reads(frozenset({"total_spend"}))


def test_an_event_triggered_journeys_audience_is_not_a_profile_condition() -> None:
    journey = compile_source('journey "t"\n  trigger event "signup"\n  audience user.age > 18\n\n  send sms "hi"\n')
    assert profile_conditions(journey).all == Reads()


def test_changed_fields() -> None:
    assert changed_fields({"a": 1, "b": 2, "tags": ["x"]}, {"a": 1, "b": 3, "c": 0, "tags": ["x"]}) == {"b", "c"}
