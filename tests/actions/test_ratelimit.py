"""The token bucket, driven by an injected clock: no test waits on the wall clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_bucket_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    assert [round(bucket.reserve(), 9) for _ in range(6)] == [0, 0, 0, 0.1, 0.2, 0.3]


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=4, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.reserve()
    clock.now += 1.0  # two tokens back
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0.5]
    clock.now += 3600  # never more than the burst
    assert [bucket.reserve() for _ in range(5)] == [0, 0, 0, 0, pytest.approx(0.5)]


def test_acquire_sleeps_what_it_must_and_a_hold_shuts_the_bucket() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=5, burst=1, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        await bucket.acquire()
        await bucket.acquire()
        bucket.hold(30)
        await bucket.acquire()

    asyncio.run(go())
    assert clock.slept == [pytest.approx(0.2), pytest.approx(30)]


@given(rate=st.floats(min_value=0.1, max_value=1000), burst=st.integers(min_value=1, max_value=100),
       gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200))
def test_never_more_than_burst_plus_rate_times_elapsed(rate: float, burst: int, gaps: list[float]) -> None:
    clock = Clock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock, sleep=clock.sleep)
    start = clock.now
    sends: list[float] = []
    for gap in gaps:
        clock.now += gap
        sends.append(clock.now + bucket.reserve())  # when this message may go
    for i, moment in enumerate(sends):
        assert i + 1 <= burst + (moment - start) * rate + 1e-6
