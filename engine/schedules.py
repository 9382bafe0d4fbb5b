"""When `trigger schedule` ticks, and whom each tick is for. Pure: no clock, no SQL.

A schedule reads its cron either in each user's own zone (`in user zone`, the default) or in
the journey's zone (`in journey zone`, one instant for everyone). A *tick* is an instant; at a
tick the pass enters the users whose zone has a fire at that instant. The runtime stores the
ticks (`schedule_ticks`) and asks this module three questions with the distinct raw
`profiles.timezone` values it found: when is the next tick, which tick is due now (catching
up on missed ones), and which raw zone values does a tick select.

Fire times follow `engine.timing`: a local time skipped by a DST change fires at the same wall
time after the jump (02:30 becomes 03:30), a repeated one fires the first time only. The
instants are computed exactly even when a skipped wall time lands after a later one (a cron
firing at both 02:30 and 03:00 on a spring-forward day), which a plain walk over wall times
would get wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache

from dsl.cron import CronSpec, next_fire, parse_cron

from .timing import first_zone, known_zone

ZoneValue = str | None  # a raw `profiles.timezone`: maybe NULL, maybe a name no database knows
MINUTE = timedelta(minutes=1)
_NEAR = timedelta(days=2)  # longer than any gap a zone change leaves (Samoa skipped one day)
_SHORT_REACH = timedelta(hours=2)  # a frequent cron's latest fire is found by looking this far back first


@dataclass(frozen=True)
class Schedule:
    """One schedule trigger, ready to ask: its cron, whose clock reads it, and the zone of users
    without a known zone of their own (the journey's, else the installation's)."""

    spec: CronSpec
    per_user: bool
    fallback: tzinfo

    def zone_of(self, value: ZoneValue) -> tzinfo:
        """The zone a profile's raw value stands for under this trigger."""
        if not self.per_user:
            return self.fallback
        return known_zone(value) or self.fallback


@dataclass(frozen=True)
class Members:
    """Whom one tick is for: everyone, or the profiles whose raw zone value is in `values`
    (None standing for NULL)."""

    everyone: bool
    values: frozenset[ZoneValue] = frozenset()


EVERYONE = Members(everyone=True)


@cache
def schedule_of(cron: str, zone_mode: str, journey_zone: str | None, installation_zone: str) -> Schedule:
    """The `Schedule` of a trigger; cached, because the runtime asks on every loop."""
    return Schedule(parse_cron(cron), zone_mode == "user", first_zone(journey_zone, installation_zone))


# --------------------------------------------------------------------------- one zone


def _resolve(wall: datetime, where: tzinfo) -> datetime:
    """The instant a local wall time names (fold=0: after a gap, the first of a repeat)."""
    return wall.replace(tzinfo=where, fold=0).astimezone(UTC)


def _wall(moment: datetime, where: tzinfo) -> datetime:
    return moment.astimezone(where).replace(tzinfo=None)


def _walls(spec: CronSpec, start: datetime) -> Iterator[datetime]:
    """The naive wall times matching `spec` strictly after the minute of `start`, in order."""
    moment = start
    while (found := next_fire(spec, moment)) is not None:
        yield found
        moment = found


def _offsets(where: tzinfo, *moments: datetime) -> set[timedelta]:
    found = set()
    for moment in moments:
        for near in (moment - _NEAR, moment, moment + _NEAR):
            offset = near.astimezone(where).utcoffset()
            if offset is not None:
                found.add(offset)
    return found


def fire_after(spec: CronSpec, where: tzinfo, after: datetime) -> datetime | None:
    """The first instant strictly after `after` at which `spec`, read in `where`, fires; None if
    it never does. Near a change of offset the walk over wall times is widened by the change,
    so that a skipped time resolving later than a following one is not taken first."""
    after = after.astimezone(UTC)
    simple = next((t for w in _walls(spec, _wall(after, where)) if (t := _resolve(w, where)) > after), None)
    if simple is None:
        return None
    offsets = _offsets(where, after, simple)
    if len(offsets) == 1:
        return simple  # no change of offset nearby: wall order is instant order
    lowest, highest = min(offsets), max(offsets)
    end = simple.replace(tzinfo=None) + highest
    best = simple
    for wall in _walls(spec, after.replace(tzinfo=None) + lowest - MINUTE):
        if wall > end:
            break
        moment = _resolve(wall, where)
        if after < moment < best:
            best = moment
    return best


def fires_at(spec: CronSpec, where: tzinfo, at: datetime) -> bool:
    """Whether `spec`, read in `where`, fires at the instant `at`."""
    return at.second == 0 and at.microsecond == 0 and fire_after(spec, where, at - MINUTE) == at


def latest_fire(spec: CronSpec, where: tzinfo, after: datetime, until: datetime) -> datetime | None:
    """The last fire in (after, until], or None: looks a short way back first, so that an
    every-minute cron does not walk a whole day of fires."""
    start = max(after, until - _SHORT_REACH)
    while True:
        found = None
        moment = fire_after(spec, where, start)
        while moment is not None and moment <= until:
            found = moment
            moment = fire_after(spec, where, moment)
        if found is not None or start <= after:
            return found
        start = after


# --------------------------------------------------------------------------- a trigger's zones


def zones(schedule_: Schedule, values: Iterable[ZoneValue]) -> set[tzinfo]:
    """The distinct zones the trigger reads for profiles with these raw zone values."""
    if not schedule_.per_user:
        return {schedule_.fallback}
    return {schedule_.zone_of(value) for value in values}


def next_tick(schedules: Iterable[Schedule], values: Collection[ZoneValue], after: datetime) -> datetime | None:
    """The first tick strictly after `after`: the earliest fire over every trigger and zone."""
    fires = [fire_after(s.spec, where, after) for s in schedules for where in zones(s, values)]
    return min((f for f in fires if f is not None), default=None)


def due_tick(schedules: Iterable[Schedule], values: Collection[ZoneValue], last: datetime, now: datetime,
             catch_up: timedelta) -> datetime | None:
    """The tick to run now, if any: per zone, only the latest fire after `last` (and within
    `catch_up` of now) counts, so a zone missed for days fires once; the earliest such fire
    over all zones goes first, and the later ones follow as the next ticks."""
    since = max(last, now - catch_up)
    fires = [latest_fire(s.spec, where, since, now) for s in schedules for where in zones(s, values)]
    return min((f for f in fires if f is not None), default=None)


def tick_members(schedules: Iterable[Schedule], values: Collection[ZoneValue], at: datetime, now: datetime) -> Members:
    """Whom the tick at `at` enters: the raw zone values whose zone fires at `at` for some
    trigger and not again before `now` (a later fire of the zone is its own, later tick: of
    one zone's missed fires only the latest enters). A journey-zone trigger firing means
    everyone."""
    chosen: set[ZoneValue] = set()
    for s in schedules:
        firing = {where for where in zones(s, values) if _is_latest(s.spec, where, at, now)}
        if firing and not s.per_user:
            return EVERYONE
        chosen |= {value for value in values if s.zone_of(value) in firing}
    return Members(everyone=False, values=frozenset(chosen))


def _is_latest(spec: CronSpec, where: tzinfo, at: datetime, now: datetime) -> bool:
    following = fire_after(spec, where, at)
    return fires_at(spec, where, at) and (following is None or following > now)
