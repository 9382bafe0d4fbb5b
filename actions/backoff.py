"""When to try a failed send again: pure arithmetic, so it can be tested from a table.

Exponential backoff with "equal jitter": the n-th retry waits between half and all of
`base * 2**(n-1)`, capped. The exponential part spreads retries out as an outage drags on; the
random half keeps thousands of messages that failed together from all coming back in the same
second. A provider's own `Retry-After` replaces the guess (it knows; we only guess), up to a cap
so that a silly header cannot park a message for a year.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from dsl.numerals import ascii_digits

from .settings import RetryPolicy


def backoff_seconds(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """How long to wait after failed attempt number `attempt` (1-based) before the next one."""
    ceiling = min(policy.max_seconds, policy.base_seconds * 2.0 ** min(max(attempt - 1, 0), 62))
    return ceiling / 2 + rng.random() * ceiling / 2


def retry_delay(attempt: int, retry_after: float | None, policy: RetryPolicy, rng: random.Random) -> float:
    """The wait before the next attempt: the provider's Retry-After if it gave one, else backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), policy.max_retry_after_seconds)
    return backoff_seconds(attempt, policy, rng)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds from `now`: the header is either seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if ascii_digits(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
