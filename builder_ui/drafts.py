"""The builder's blocking database work, run on worker threads by the views.

Journeys are created, drafted, published, paused and resumed through the very functions the
HTTP API uses (`api.journey_service`), so a publish from the builder takes the same lock, runs
the same checks and numbers versions the same way as one from the API.

The list's figures come from what is cheap to read at any size: the hourly `step_counters`
(users in the journey from its `live` gauge, entries and conversions from its totals), which
the report page reads too; never a scan of the runs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import desc, func, select

from api import journey_service
from api.problems import Problem
from api.services import Services
from dsl import JourneyError, parse
from engine.messages import EVENT_TYPES
from engine.runtime import JOURNEY_LEVEL, slugify
from storage import analytics
from storage import journeys as stored
from storage.tables import coupon_pools, events, journey_versions, step_counters

NEW_JOURNEY = 'journey {name}\n  trigger event "signup"\n\n  pass\n'
RECENT_EVENTS = 5_000  # how far back the event names and properties offered in forms are taken from
SEEN_CACHE_SECONDS = 30.0  # those suggestions may be this stale
MAX_PROPERTIES = 40  # per event name


@dataclass(frozen=True)
class Draft:
    slug: str
    name: str
    status: str
    live_version: int | None
    draft_version: int | None
    source: str  # the draft's text, else the live version's


@dataclass(frozen=True)
class Row:
    slug: str
    name: str
    status: str
    live_version: int | None
    draft_version: int | None
    in_journey: int
    entered: int
    converted: int

    @property
    def conversion(self) -> float | None:
        return self.converted / self.entered if self.entered else None


class Refused(Exception):
    """What the API would answer with a problem: the builder shows the detail to the user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _refusing(problem: Problem) -> Refused:
    return Refused(problem.detail)


def load(svc: Services, slug: str) -> Draft | None:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            return None
        draft = stored.draft(conn, journey.id)
        live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
    shown = draft or live
    return Draft(journey.slug, journey.name, journey.status, live.number if live else None,
                 draft.number if draft else None, shown.source if shown else "")


def save(svc: Services, slug: str, source: str) -> None:
    try:
        journey_service.save_draft(svc, slug, source)
    except Problem as problem:
        raise _refusing(problem) from None


def create(svc: Services, name: str) -> str:
    """A new journey named `name` (its slug made unique) with one trigger and an empty flow."""
    from dsl.formatter import format_string

    source = NEW_JOURNEY.format(name=format_string(name))
    try:
        parse(source)
    except JourneyError:
        raise Refused("that name cannot be used") from None
    base = slugify(name) or "journey"
    for n in range(1, 1000):
        slug = base if n == 1 else f"{base}-{n}"
        try:
            journey_service.create(svc, source, slug)
            return slug
        except Problem as problem:
            if problem.status != 409:
                raise _refusing(problem) from None
    raise Refused("too many journeys with that name")


def publish(svc: Services, slug: str, username: str, reviewed: str | None = None) -> None:
    try:
        journey_service.publish(svc, slug, f"user:{username}", expected_source=reviewed)
    except Problem as problem:
        raise _refusing(problem) from None


def set_status(svc: Services, slug: str, action: str) -> None:
    try:
        journey_service.set_status(svc, slug, action)
    except Problem as problem:
        raise _refusing(problem) from None


def overview(svc: Services) -> list[Row]:
    with svc.db.connect() as conn:
        listed = stored.list_all(conn)
        version_of = {int(v): int(j) for v, j in conn.execute(select(journey_versions.c.id,
                                                                     journey_versions.c.journey_id))}
        in_journey: dict[int, int] = defaultdict(int)
        for version_id, n in analytics.live_runs(conn, list(version_of)).items():
            in_journey[version_of[version_id]] += n
        totals: dict[tuple[int, str], int] = defaultdict(int)
        counted = (select(journey_versions.c.journey_id, step_counters.c.metric, func.sum(step_counters.c.count))
                   .join(journey_versions, journey_versions.c.id == step_counters.c.version_id)
                   .where(step_counters.c.step_id == JOURNEY_LEVEL)
                   .group_by(journey_versions.c.journey_id, step_counters.c.metric))
        for journey_id, metric, count in conn.execute(counted):
            key = "converted" if str(metric).startswith("converted:") else str(metric)
            totals[(journey_id, key)] += int(count or 0)
        rows = []
        for journey in listed:
            draft = stored.draft(conn, journey.id)
            live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
            rows.append(Row(journey.slug, journey.name, journey.status, live.number if live else None,
                            draft.number if draft else None, int(in_journey.get(journey.id, 0)),
                            totals[(journey.id, "entered")], totals[(journey.id, "converted")]))
    return rows


@dataclass
class Suggestions:
    """Event names and their properties as seen lately, and the coupon pools: what the forms
    offer in their lists. Read from the newest events only, so it costs the same at any size."""

    events: dict[str, list[str]]
    pools: list[str]


class SuggestionCache:
    def __init__(self, seconds: float = SEEN_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[float, Suggestions] | None = None

    def get(self, svc: Services) -> Suggestions:
        with self._lock:
            if self._value is not None and self._value[0] > time.monotonic():
                return self._value[1]
        found = _suggestions(svc)
        with self._lock:
            self._value = (time.monotonic() + self.seconds, found)
        return found


def _suggestions(svc: Services) -> Suggestions:
    seen: dict[str, set[str]] = defaultdict(set)
    with svc.db.connect() as conn:
        recent = (select(events.c.name, events.c.properties).where(events.c.type.in_(sorted(EVENT_TYPES)))
                  .order_by(desc(events.c.id)).limit(RECENT_EVENTS))
        for name, properties in conn.execute(recent):
            if name:
                keys = seen[str(name)]
                if len(keys) < MAX_PROPERTIES and isinstance(properties, dict):
                    keys.update(str(k) for k in properties)
        pools = list(conn.execute(select(coupon_pools.c.name).order_by(coupon_pools.c.name)).scalars())
    return Suggestions({name: sorted(keys) for name, keys in sorted(seen.items())}, pools)
