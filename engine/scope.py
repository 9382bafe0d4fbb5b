"""What an expression can see while it is evaluated, and the one door to the outside it has.

The engine's pure core evaluates conditions against a `Scope`; reading event history (for
`count of ...`) is the only thing a condition may need from storage, so it comes in through
the `History` protocol, implemented by the I/O layer (storage) or by an in-memory list in tests
and simulation. Time comes in as `now`, never from the system clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

EventPredicate = Callable[[Mapping[str, Any]], bool]


class History(Protocol):
    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        """How many of this user's `event`s (at or after `since`, if given) satisfy `where`,
        which receives each event's properties."""
        ...


class NoHistory:
    """For contexts with no user history (a brand-new profile, or unit tests)."""

    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        return 0


@dataclass(frozen=True)
class Scope:
    """Names visible to an expression: `user.*`, `event.*`, named step results, and now()."""

    user: Mapping[str, Any]
    now: datetime  # timezone-aware, UTC
    event: Mapping[str, Any] | None = None
    results: Mapping[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=NoHistory)
