"""Small statistics for analytics, pure and tested from tables."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054  # the standard normal quantile for a two-sided 95% interval


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion. Unlike the textbook p ± z·sqrt(p(1-p)/n), it
    stays within [0, 1] and is honest for small samples and rates near 0 or 1, which is what a
    control arm of a few dozen users gives. (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0 or n successes the exact bound is 0 or 1; rounding would leave a speck either side.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def newcombe_interval(successes_a: int, trials_a: int, successes_b: int, trials_b: int,
                      z: float = Z_95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the difference of two proportions, rate B minus
    rate A (method 10 of Newcombe, 1998). It is built from each arm's Wilson interval, so like
    them it stays honest for small arms and rates near 0 or 1, where the textbook Wald
    interval for a difference is far too narrow; when it excludes 0 the difference is
    significant at that level. (-1, 1) when either arm has no trials."""
    if trials_a <= 0 or trials_b <= 0:
        return -1.0, 1.0
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    low_a, high_a = wilson_interval(successes_a, trials_a, z)
    low_b, high_b = wilson_interval(successes_b, trials_b, z)
    difference = p_b - p_a
    low = difference - math.sqrt((p_b - low_b) ** 2 + (high_a - p_a) ** 2)
    high = difference + math.sqrt((high_b - p_b) ** 2 + (p_a - low_a) ** 2)
    return max(-1.0, low), min(1.0, high)
