"""The split verdict and the interval behind it, from tables of known values."""

from __future__ import annotations

import pytest

from api.stats import newcombe_interval
from builder_ui.verdict import MIN_ARM_SIZE, Arm, baseline_of, compare, compare_all


@pytest.mark.parametrize(("a", "n_a", "b", "n_b", "low", "high"), [
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", table II, method 10; the difference is B minus A.
    (48, 80, 56, 70, 0.0524, 0.3339),
    (3, 10, 9, 10, 0.1705, 0.8090),
    (2, 7, 6, 7, 0.0582, 0.8062),
    (0, 29, 5, 56, -0.0381, 0.1926),
    (0, 10, 0, 10, -0.2775, 0.2775),
    (0, 20, 0, 10, -0.1611, 0.2775),
])
def test_newcombe_known_intervals(a: int, n_a: int, b: int, n_b: int, low: float, high: float) -> None:
    assert newcombe_interval(a, n_a, b, n_b) == pytest.approx((low, high), abs=6e-5)


def test_an_arm_without_trials_leaves_the_difference_open() -> None:
    assert newcombe_interval(0, 0, 3, 10) == (-1.0, 1.0)


@pytest.mark.parametrize(("control", "other", "text"), [
    (Arm("A", 1000, 100, True), Arm("B", 1000, 121), "B converts 2.1 points better than A; not yet significant"),
    (Arm("A", 5000, 500, True), Arm("B", 5000, 605), "B converts 2.1 points better than A; significant at 95%"),
    (Arm("A", 5000, 605, True), Arm("B", 5000, 500), "B converts 2.1 points worse than A; significant at 95%"),
    (Arm("A", 400, 40, True), Arm("B", 400, 40), "B converts the same as A; not yet significant"),
    (Arm("A", 10, 1, True), Arm("B", 200, 30), f"B against A: not enough data yet (n < {MIN_ARM_SIZE} in A)"),
    (Arm("A", 0, 0, True), Arm("B", 0, 0), f"B against A: not enough data yet (n < {MIN_ARM_SIZE} in A and B)"),
])
def test_verdicts_in_plain_words(control: Arm, other: Arm, text: str) -> None:
    assert compare(other, control).text == text


def test_a_small_sample_is_never_called_significant() -> None:
    tiny = compare(Arm("B", 20, 20), Arm("A", 20, 0, True))
    assert tiny.points == pytest.approx(100.0) and not tiny.significant and not tiny.enough


def test_each_arm_is_compared_to_the_control_or_else_the_first() -> None:
    arms = [Arm("a", 100, 10), Arm("b", 100, 12, control=True), Arm("c", 100, 14)]
    assert baseline_of(arms) is arms[1]
    assert [(c.arm.name, c.baseline.name) for c in compare_all(arms)] == [("a", "b"), ("c", "b")]
    plain = [Arm("a", 100, 10), Arm("b", 100, 12)]
    assert [(c.arm.name, c.baseline.name) for c in compare_all(plain)] == [("b", "a")]
    assert compare_all([]) == []


def test_the_interval_is_given_in_points() -> None:
    c = compare(Arm("B", 70, 56), Arm("A", 80, 48, True))
    assert c.points == pytest.approx(20.0)
    assert c.interval == pytest.approx((5.24, 33.39), abs=0.006)
    assert c.significant
