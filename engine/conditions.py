"""Which loaded journeys a profile change concerns: an index from profile fields (and counted
event names) to the journeys whose `trigger when`, `exit when` or `when` goals read them.

Why an index: every `update` step of every journey changes a profile, and most such changes
touch a field no condition reads (`user.last_order_id`). Looking the changed fields up here is
a set intersection; only a hit costs a rule evaluation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from dsl.graph import CompiledJourney
from dsl.reads import profile_conditions

from .matcher import JourneyKey


class ConditionIndex:
    def __init__(self, journeys: Mapping[JourneyKey, CompiledJourney] | None = None) -> None:
        self._by_field: defaultdict[str, set[JourneyKey]] = defaultdict(set)
        self._counting: defaultdict[str, set[JourneyKey]] = defaultdict(set)  # event -> journeys
        for key, journey in (journeys or {}).items():
            conditions = profile_conditions(journey)
            for name in conditions.all.fields:
                self._by_field[name].add(key)
            for event in conditions.counted:
                self._counting[event].add(key)

    def concerned(self, changed: Iterable[str]) -> frozenset[JourneyKey]:
        """The journeys with a profile condition that reads one of the changed fields."""
        found: set[JourneyKey] = set()
        for name in changed:
            found |= self._by_field.get(name, set())
        return frozenset(found)

    def counting(self, event: str) -> frozenset[JourneyKey]:
        """The journeys whose `trigger when` counts this event in history: a new one can make
        the condition become true without any field changing."""
        return frozenset(self._counting.get(event, ()))
