"""Deterministic splits: stable per user, close to the stated shares over many users."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from dsl.graph import SplitArmSpec
from engine.splits import BUCKETS, bucket, choose_arm

ARMS = (
    SplitArmSpec("s.a", 50.0, False, "x"),
    SplitArmSpec("s.b", 40.0, False, "y"),
    SplitArmSpec("s.control", 10.0, True, "z"),
)


@given(st.text(), st.text(), st.text())
def test_same_inputs_same_bucket(user: str, journey: str, split: str) -> None:
    assert bucket(user, journey, split) == bucket(user, journey, split)
    assert 0 <= bucket(user, journey, split) < BUCKETS


def test_known_value_pins_the_hash_across_machines_and_versions() -> None:
    """If this changes, every running A/B test reshuffles its users: never change the hash."""
    assert bucket("user-1", "journey-1", "split_offer_test") == 9945


def test_shares_over_many_users_match_the_percentages() -> None:
    counts = Counter(choose_arm(ARMS, f"user-{i}", "j", "s").id for i in range(20_000))
    assert abs(counts["s.a"] / 20_000 - 0.50) < 0.015
    assert abs(counts["s.b"] / 20_000 - 0.40) < 0.015
    assert abs(counts["s.control"] / 20_000 - 0.10) < 0.01


def test_different_splits_are_independent() -> None:
    """The same users are not put in the 'first' arm of every split of a journey."""
    first = {u for u in range(2_000) if choose_arm(ARMS, str(u), "j", "s1").id == "s.a"}
    second = {u for u in range(2_000) if choose_arm(ARMS, str(u), "j", "s2").id == "s.a"}
    overlap = len(first & second) / len(first)
    assert 0.4 < overlap < 0.6
