"""The retry schedule: bounds, caps, and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.backoff import backoff_seconds, parse_retry_after, retry_delay
from actions.settings import RetryPolicy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=8, base_seconds=30, max_seconds=3600, max_retry_after_seconds=86_400)


@given(attempt=st.integers(min_value=1, max_value=10_000), seed=st.integers(),
       base=st.floats(min_value=0.1, max_value=600), cap=st.floats(min_value=1, max_value=86_400))
def test_backoff_stays_between_half_and_all_of_the_capped_exponential(attempt: int, seed: int, base: float,
                                                                      cap: float) -> None:
    policy = RetryPolicy(base_seconds=base, max_seconds=cap)
    ceiling = min(cap, base * 2.0 ** (attempt - 1)) if attempt < 1000 else cap
    delay = backoff_seconds(attempt, policy, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


@given(seed=st.integers(), attempt=st.integers(min_value=1, max_value=20))
def test_the_upper_bound_never_shrinks_from_one_attempt_to_the_next(seed: int, attempt: int) -> None:
    high = random.Random(seed)
    high.random = lambda: 1.0  # type: ignore[method-assign]
    assert backoff_seconds(attempt, POLICY, high) <= backoff_seconds(attempt + 1, POLICY, high)


def test_the_schedule_in_numbers() -> None:
    top = random.Random(0)
    top.random = lambda: 1.0  # type: ignore[method-assign]
    assert [backoff_seconds(n, POLICY, top) for n in range(1, 10)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


@given(retry_after=st.floats(min_value=0, max_value=1e9), seed=st.integers())
def test_retry_after_replaces_the_guess_up_to_a_cap(retry_after: float, seed: int) -> None:
    assert retry_delay(3, retry_after, POLICY, random.Random(seed)) == min(retry_after, 86_400)


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),
    (" 0 ", 0.0),
    ("Mon, 02 Mar 2026 10:05:00 GMT", 300.0),
    ("Mon, 02 Mar 2026 09:00:00 GMT", 0.0),  # a date in the past: now
    ("soon", None),
    ("²", None),  # str.isdigit says yes, float() raised: a hostile receiver stopped the batch
    ("", None),
    (None, None),
])
def test_retry_after_is_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
