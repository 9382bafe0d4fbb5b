"""Slowing down password guessing: failed logins are counted per user name and per client
address, and after a few of them that key must wait before it may try again.

Counting both keys matters: per name alone lets one address try a common password against
every name; per address alone lets a botnet try every password against one name. The wait
doubles with each failure past the free ones, up to a ceiling, and a success clears the
name's count. Counts live in this process's memory: a restart forgets them, which costs an
attacker a restart they cannot cause from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREE_FAILURES = 5  # failures allowed before any wait: typos must not lock anyone out
FIRST_WAIT_SECONDS = 2.0
MAX_WAIT_SECONDS = 15 * 60.0
FORGET_AFTER_SECONDS = 60 * 60.0  # a key with no failure for this long starts afresh
MAX_KEYS = 100_000  # memory bound: past it, keys that may try again are dropped


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0


@dataclass
class LoginThrottle:
    monotonic: Callable[[], float] = time.monotonic
    _records: dict[str, _Record] = field(default_factory=dict)

    def wait_seconds(self, *keys: str) -> float:
        """How long before any of `keys` may try to log in again (0 if it may now)."""
        now = self.monotonic()
        waits = [record.blocked_until - now for key in keys if (record := self._records.get(key)) is not None]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = self.monotonic()
        if len(self._records) > MAX_KEYS:
            self._records = {k: r for k, r in self._records.items() if r.blocked_until > now}
        for key in keys:
            record = self._records.setdefault(key, _Record())
            if now - record.last_failure > FORGET_AFTER_SECONDS:
                record.failures = 0
            record.failures += 1
            record.last_failure = now
            over = record.failures - FREE_FAILURES
            if over > 0:
                record.blocked_until = now + min(FIRST_WAIT_SECONDS * 2 ** (over - 1), MAX_WAIT_SECONDS)

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)
