"""The Wilson interval, from a table of known values."""

from __future__ import annotations

import pytest

from api.stats import wilson_interval


@pytest.mark.parametrize(("successes", "trials", "low", "high"), [
    (0, 0, 0.0, 1.0),  # nothing observed: anything is possible
    (0, 10, 0.0, 0.27754),
    (10, 10, 0.72246, 1.0),
    (5, 10, 0.23659, 0.76341),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_known_intervals(successes: int, trials: int, low: float, high: float) -> None:
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=6e-5)  # the table gives four decimals


def test_the_interval_holds_the_rate_and_stays_in_bounds() -> None:
    for trials in (1, 7, 50):
        for successes in range(trials + 1):
            low, high = wilson_interval(successes, trials)
            assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_more_successes_than_trials_is_an_error() -> None:
    with pytest.raises(ValueError, match="between 0 and 3"):
        wilson_interval(4, 3)
