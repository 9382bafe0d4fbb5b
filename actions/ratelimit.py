"""Per-provider rate limits: a token bucket, so a big journey cannot get the account blocked.

The bucket holds up to `burst` tokens and gains `rate` per second; each message takes one. A
caller that finds it empty *reserves* the next token (the count goes below zero) and is told
how long to wait, so waiters are served in order and never more than `rate` per second go out.
A provider's 429 can `hold` the bucket shut until its Retry-After has passed.

Time comes from an injected monotonic clock and sleep, so tests drive it without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate} and {burst}")
        self.rate, self.burst = rate, float(burst)
        self.clock, self.sleep = clock, sleep
        self.tokens = float(burst)
        self.updated = clock()
        self.held_until = self.updated

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def reserve(self) -> float:
        """Take a token now; the seconds to wait before using it (0 when one was in the bucket)."""
        now = self.clock()
        self._refill(now)
        self.tokens -= 1
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        return max(wait, self.held_until - now)

    def hold(self, seconds: float) -> None:
        """Send nothing for `seconds` (a provider answered 429 with Retry-After)."""
        self.held_until = max(self.held_until, self.clock() + seconds)

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await self.sleep(wait)
