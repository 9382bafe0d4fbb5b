"""Random splits that are not random per run: a user lands in the same branch of the same
split on every machine, every time, so a retried or replayed step cannot switch branches."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from dsl.graph import SplitArmSpec

BUCKETS = 10_000  # basis points: percentages with two decimals split exactly


def bucket(user_key: str, journey: str, split_id: str) -> int:
    """A stable number in [0, BUCKETS) for this user, journey and split."""
    digest = hashlib.sha256(f"{journey}\x1f{split_id}\x1f{user_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_arm(arms: Sequence[SplitArmSpec], user_key: str, journey: str, split_id: str) -> SplitArmSpec:
    """The arm whose cumulative share covers this user's bucket."""
    point = bucket(user_key, journey, split_id)
    upper = 0.0
    for arm in arms:
        upper += arm.percent * BUCKETS / 100
        if point < round(upper):
            return arm
    return arms[-1]  # percentages that add to 100 only up to rounding


def pick_arm(arms: Sequence[SplitArmSpec], user_key: str, journey: str, split_id: str,
             forced: Mapping[str, int]) -> SplitArmSpec:
    """The arm `forced` names for this split (by position), else the user's `choose_arm`.
    Only a simulation forces arms, to follow a branch the sample user would not hash to; live
    runs pass nothing, and an index out of range is ignored rather than guessed at."""
    index = forced.get(split_id)
    if index is not None and 0 <= index < len(arms):
        return arms[index]
    return choose_arm(arms, user_key, journey, split_id)
