"""Reading journey analytics: sums over `step_counters`, never a scan of `journey_runs`.

The engine counts, in the transaction of every run change, per version, step, metric and UTC
hour (`storage.counters`). Every question here is one GROUP BY over those rows, so its cost
grows with steps × hours, not with runs: the report reads as fast with a million runs
recorded as with ten. Gauges (runs waiting at a step, runs still in the journey) are the sum
of their +1s and -1s over all buckets.

Steps, arms and versions without counters are absent from the answers: callers that show a
whole graph fill the rest with zeros from it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    case,
    func,
    literal_column,
    not_,
    or_,
    select,
    type_coerce,
)

from .counters import (
    ARM,
    ARM_CONVERTED,
    CANCELLED,
    COMPLETED,
    CONVERTED,
    CONVERTED_GOAL,
    ENTERED,
    EXITED,
    JOURNEY_LEVEL,
    LIVE,
    SUPPRESSED,
    WAITING,
)
from .journeys import SplitArm, SplitStep
from .tables import step_counters
from .types import UTCDateTime

GRANULARITIES = ("hour", "day")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the bucket of totals when nothing was counted yet

_STEP_METRICS = (ENTERED, WAITING, EXITED, CONVERTED, SUPPRESSED, CANCELLED)
_SERIES_METRICS = (ENTERED, EXITED, COMPLETED)  # with every converted:<goal> as `converted`


@dataclass(frozen=True)
class StepFigures:
    """One step's counts, all time. At the journey level (`JOURNEY_LEVEL`): runs started, exits
    and conversions (all goals); its `waiting` stays 0 (see `live_runs`)."""

    step: str
    entered: int = 0
    waiting: int = 0  # there now (the gauge)
    exited: int = 0  # left the journey at this step
    converted: int = 0  # reached a goal while at this step (any goal)
    suppressed: int = 0
    cancelled: int = 0  # messages held by quiet hours, cancelled when the run exited

    @property
    def left(self) -> int:
        """Runs that came here and are no longer waiting here."""
        return max(self.entered - self.waiting, 0)

    @property
    def moved_on(self) -> int:
        """Runs that left this step for the next one, rather than leaving the journey here."""
        return max(self.left - self.exited, 0)


@dataclass(frozen=True)
class Point:
    """One bucket of the journey-level series."""

    bucket: datetime  # aware UTC: the hour, or the day's midnight UTC
    entered: int
    converted: int  # all goals
    exited: int
    completed: int


@dataclass(frozen=True)
class ArmFigures:
    split: str  # the split step id
    arm: str
    entered: int
    converted: int  # runs whose first conversion came after they took the arm


def step_figures(conn: Connection, version_ids: Collection[int]) -> dict[str, StepFigures]:
    """Per step id, its counts summed over these versions, the journey level included."""
    if not version_ids:
        return {}
    metric = _goals_as_converted()
    rows = conn.execute(
        select(step_counters.c.step_id, metric, func.sum(step_counters.c.count))
        .where(and_(_versions(version_ids),
                    or_(step_counters.c.metric.in_(_STEP_METRICS), _is_goal_conversion())))
        .group_by(step_counters.c.step_id, metric))
    found: dict[str, dict[str, int]] = {}
    for step, name, total in rows:
        found.setdefault(step, {})[name] = int(total)
    return {step: StepFigures(step, counts.get(ENTERED, 0), counts.get(WAITING, 0), counts.get(EXITED, 0),
                              counts.get(CONVERTED, 0), counts.get(SUPPRESSED, 0), counts.get(CANCELLED, 0))
            for step, counts in found.items()}


def journey_series(conn: Connection, version_ids: Collection[int], granularity: str = "day",
                   since: datetime | None = None) -> list[Point]:
    """Runs started, converted (all goals), exited and completed per hour or per UTC day, in time
    order; buckets where nothing was counted are left out. `since` (an hour, or a UTC midnight
    for days) leaves out what came before, so a week's chart reads a week of counters."""
    if not version_ids:
        return []
    bucket = _bucket(conn, granularity)
    metric = _goals_as_converted()
    where = _journey_counts(version_ids)
    if since is not None:
        where = and_(where, step_counters.c.bucket >= since)
    rows = conn.execute(
        select(bucket, metric, func.sum(step_counters.c.count))
        .where(where).group_by(bucket, metric).order_by(bucket))
    points: dict[datetime, dict[str, int]] = {}
    for moment, name, total in rows:
        points.setdefault(moment, {})[name] = int(total)
    return [_point(moment, counts) for moment, counts in points.items()]


def step_series(conn: Connection, version_ids: Collection[int],
                granularity: str = "hour") -> dict[str, dict[datetime, dict[str, int]]]:
    """Step id -> bucket (in time order) -> metric -> count, for every counted metric of every
    step (the journey level's `converted:<goal>` included, and added up as `converted`); the
    gauges and the split arms are left out. What the API's per-step series show."""
    if not version_ids:
        return {}
    bucket = _bucket(conn, granularity)
    rows = conn.execute(
        select(step_counters.c.step_id, bucket, step_counters.c.metric, func.sum(step_counters.c.count))
        .where(and_(_versions(version_ids), step_counters.c.metric.not_in((WAITING, LIVE)),
                    not_(step_counters.c.metric.startswith(ARM, autoescape=True)),
                    not_(step_counters.c.metric.startswith(ARM_CONVERTED, autoescape=True))))
        .group_by(step_counters.c.step_id, bucket, step_counters.c.metric).order_by(bucket))
    found: dict[str, dict[datetime, dict[str, int]]] = {}
    for step, moment, metric, total in rows:
        cell = found.setdefault(step, {}).setdefault(moment, {})
        cell[metric] = int(total)
        if metric.startswith(CONVERTED_GOAL):
            cell[CONVERTED] = cell.get(CONVERTED, 0) + int(total)
    return found


def goal_conversions(conn: Connection, version_ids: Collection[int]) -> dict[str, int]:
    """Goal name -> runs credited with it, over these versions."""
    if not version_ids:
        return {}
    rows = conn.execute(
        select(step_counters.c.metric, func.sum(step_counters.c.count))
        .where(and_(_versions(version_ids), step_counters.c.step_id == JOURNEY_LEVEL, _is_goal_conversion()))
        .group_by(step_counters.c.metric))
    return {name.removeprefix(CONVERTED_GOAL): int(total) for name, total in rows}


def journey_totals(conn: Connection, version_ids: Collection[int]) -> Point:
    """The series' figures over all time; its bucket is the earliest one counted (the epoch when
    there is none), which is when the figures start."""
    if not version_ids:
        return _point(EPOCH, {})
    metric = _goals_as_converted()
    rows = conn.execute(
        select(metric, func.sum(step_counters.c.count), func.min(step_counters.c.bucket))
        .where(_journey_counts(version_ids)).group_by(metric)).all()
    since = min((first for _, _, first in rows), default=EPOCH)
    return _point(since, {name: int(total) for name, total, _ in rows})


def arm_figures(conn: Connection, version_id: int, splits: Collection[str] | None = None) -> list[ArmFigures]:
    """Per split and arm of one version, in id order: runs that took it, and how many of those
    converted after taking it. Arms no run took are absent. Naming the version's `splits` (its
    split step ids) lets the query read only their counters, by the primary key."""
    where = and_(step_counters.c.version_id == version_id,
                 or_(step_counters.c.metric.startswith(ARM, autoescape=True),
                     step_counters.c.metric.startswith(ARM_CONVERTED, autoescape=True)))
    if splits is not None:
        if not splits:
            return []
        where = and_(where, step_counters.c.step_id.in_(sorted(splits)))
    rows = conn.execute(
        select(step_counters.c.step_id, step_counters.c.metric, func.sum(step_counters.c.count))
        .where(where)
        .group_by(step_counters.c.step_id, step_counters.c.metric))
    taken: dict[tuple[str, str], list[int]] = {}
    for split, metric, total in rows:
        converted = metric.startswith(ARM_CONVERTED)
        arm = metric.removeprefix(ARM_CONVERTED if converted else ARM)
        taken.setdefault((split, arm), [0, 0])[converted] += int(total)
    return [ArmFigures(split, arm, entered, converted) for (split, arm), (entered, converted) in sorted(taken.items())
            if entered]


def arms_of(split: SplitStep, found: Collection[ArmFigures]) -> list[tuple[SplitArm, int, int]]:
    """Every arm of a split with (runs that took it, those of them that converted); arms no run
    took yet as zeros, which `arm_figures` leaves out."""
    taken = {(f.split, f.arm): f for f in found}
    out = []
    for arm in split.arms:
        figures = taken.get((split.id, arm.id))
        out.append((arm, figures.entered if figures else 0, figures.converted if figures else 0))
    return out


def live_runs(conn: Connection, version_ids: Collection[int]) -> dict[int, int]:
    """Version id -> its runs still in the journey (active or waiting); 0 for a version with none."""
    if not version_ids:
        return {}
    rows = conn.execute(
        select(step_counters.c.version_id, func.sum(step_counters.c.count))
        .where(and_(_versions(version_ids), step_counters.c.step_id == JOURNEY_LEVEL,
                    step_counters.c.metric == LIVE))
        .group_by(step_counters.c.version_id))
    return {version: 0 for version in version_ids} | {int(version): int(total) for version, total in rows}


# --------------------------------------------------------------------------- SQL pieces


def _versions(version_ids: Collection[int]) -> ColumnElement[bool]:
    return step_counters.c.version_id.in_(sorted(version_ids))


def _is_goal_conversion() -> ColumnElement[bool]:
    """Literal SQL (the prefix holds no LIKE wildcard): see `_day`."""
    return step_counters.c.metric.like(literal_column(f"'{CONVERTED_GOAL}%'", String))


def _goals_as_converted() -> ColumnElement[str]:
    """The metric, with every `converted:<goal>` read as `converted`, so that one GROUP BY adds
    all goals up."""
    return case((_is_goal_conversion(), literal_column(f"'{CONVERTED}'", String)), else_=step_counters.c.metric)


def _journey_counts(version_ids: Collection[int]) -> ColumnElement[bool]:
    """The journey-level counters of the series and totals."""
    return and_(_versions(version_ids), step_counters.c.step_id == JOURNEY_LEVEL,
                or_(step_counters.c.metric.in_(_SERIES_METRICS), _is_goal_conversion()))


def _bucket(conn: Connection, granularity: str) -> ColumnElement[datetime]:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    return _day(conn) if granularity == "day" else step_counters.c.bucket


def _day(conn: Connection) -> ColumnElement[datetime]:
    """The bucket's UTC day, as its midnight. Literal SQL, not bound values: an expression in
    SELECT and GROUP BY must be the same, and two bound parameters are never the same."""
    if conn.dialect.name == "postgresql":
        day = func.date_trunc(literal_column("'day'"), step_counters.c.bucket, literal_column("'UTC'"))
    else:  # SQLite keeps the UTC wall clock as text; see storage.types.UTCDateTime
        day = func.strftime(literal_column("'%Y-%m-%d 00:00:00.000000'"), step_counters.c.bucket)
    return type_coerce(day, UTCDateTime)


def _point(bucket: datetime, counts: dict[str, int]) -> Point:
    return Point(bucket, counts.get(ENTERED, 0), counts.get(CONVERTED, 0), counts.get(EXITED, 0),
                 counts.get(COMPLETED, 0))


__all__ = ["GRANULARITIES", "ArmFigures", "Point", "StepFigures", "arm_figures", "goal_conversions",
           "journey_series", "journey_totals", "live_runs", "step_figures", "step_series"]
