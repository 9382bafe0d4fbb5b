"""The analytics read side: sums over `step_counters`, on both backends, without a look at
`journey_runs`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, event, insert

from storage import analytics, counters, migrate
from storage.analytics import ArmFigures, Point, StepFigures
from storage.counters import JOURNEY_LEVEL, CounterRow
from storage.database import alembic_config
from storage.tables import journey_runs, journey_versions, journeys, profiles

NOW = datetime(2026, 6, 1, 22, 15, tzinfo=UTC)  # 06:15 on 2 June in the tests' Shanghai session zone
HOUR = timedelta(hours=1)


def add_versions(conn: Connection, count: int, slug: str = "offer") -> list[int]:
    journey_id = conn.execute(insert(journeys).values(slug=slug, name=slug, created_at=NOW, updated_at=NOW)
                              .returning(journeys.c.id)).scalar_one()
    return [conn.execute(insert(journey_versions).values(journey_id=journey_id, version=n, source="", graph={},
                                                          created_at=NOW).returning(journey_versions.c.id)).scalar_one()
            for n in range(1, count + 1)]


def counted(db: Engine, rows: list[CounterRow]) -> None:
    with db.begin() as conn:
        counters.increment(conn, rows)


@pytest.fixture
def versions(db: Engine) -> list[int]:
    with db.begin() as conn:
        return add_versions(conn, 3)


def test_step_figures_sum_every_bucket_of_the_versions_asked_for(db: Engine, versions: list[int]) -> None:
    v1, v2, other = versions
    counted(db, [
        (v1, "wait", "entered", NOW, 5), (v1, "wait", "entered", NOW + HOUR, 2), (v2, "wait", "entered", NOW, 1),
        (v1, "wait", "waiting", NOW, 5), (v1, "wait", "waiting", NOW + HOUR, -3), (v2, "wait", "waiting", NOW, 1),
        (v1, "wait", "exited", NOW + HOUR, 1), (v1, "wait", "converted", NOW, 2),
        (v1, "sms", "entered", NOW, 4), (v1, "sms", "suppressed", NOW, 1),
        (v1, JOURNEY_LEVEL, "entered", NOW, 7), (v1, JOURNEY_LEVEL, "exited", NOW, 1),
        (v1, JOURNEY_LEVEL, "converted:bought", NOW, 2), (v2, JOURNEY_LEVEL, "converted:liked", NOW, 1),
        (v1, JOURNEY_LEVEL, "live", NOW, 6), (v1, "split", "arm:split.a", NOW, 3),
        (other, "wait", "entered", NOW, 100),
    ])
    with db.connect() as conn:
        figures = analytics.step_figures(conn, [v1, v2])
        assert analytics.step_figures(conn, []) == {}
    assert figures == {
        "wait": StepFigures("wait", entered=8, waiting=3, exited=1, converted=2),
        "sms": StepFigures("sms", entered=4, suppressed=1),
        JOURNEY_LEVEL: StepFigures(JOURNEY_LEVEL, entered=7, exited=1, converted=3),
    }
    assert (figures["wait"].left, figures["wait"].moved_on) == (5, 4)


def test_left_and_moved_on_never_go_below_zero() -> None:
    odd = StepFigures("s", entered=1, waiting=3, exited=2)
    assert (odd.left, odd.moved_on) == (0, 0)


def test_the_journey_series_by_hour_and_by_utc_day(db: Engine, versions: list[int]) -> None:
    v1, v2, _ = versions
    before_midnight, after_midnight = datetime(2026, 6, 1, 23, 59, tzinfo=UTC), datetime(2026, 6, 2, 0, 1, tzinfo=UTC)
    counted(db, [
        (v1, JOURNEY_LEVEL, "entered", NOW, 3), (v2, JOURNEY_LEVEL, "entered", before_midnight, 1),
        (v1, JOURNEY_LEVEL, "converted:bought", before_midnight, 1),
        (v1, JOURNEY_LEVEL, "converted:liked", before_midnight, 2),
        (v1, JOURNEY_LEVEL, "exited", after_midnight, 1), (v1, JOURNEY_LEVEL, "completed", after_midnight, 2),
        (v1, JOURNEY_LEVEL, "live", after_midnight, 1), (v1, "wait", "entered", after_midnight, 9),
    ])
    with db.connect() as conn:
        hours = analytics.journey_series(conn, [v1, v2], "hour")
        days = analytics.journey_series(conn, [v1, v2])
        only_v2 = analytics.journey_series(conn, [v2], "hour")
        from_midnight = analytics.journey_series(conn, [v1, v2], since=datetime(2026, 6, 2, tzinfo=UTC))
        last_hour = analytics.journey_series(conn, [v1, v2], "hour", since=after_midnight.replace(minute=0))
        with pytest.raises(ValueError, match="granularity"):
            analytics.journey_series(conn, [v1], "week")
    assert hours == [Point(NOW.replace(minute=0), 3, 0, 0, 0),
                     Point(before_midnight.replace(minute=0), 1, 3, 0, 0),
                     Point(after_midnight.replace(minute=0), 0, 0, 1, 2)]
    assert days == [Point(datetime(2026, 6, 1, tzinfo=UTC), 4, 3, 0, 0),
                    Point(datetime(2026, 6, 2, tzinfo=UTC), 0, 0, 1, 2)]
    assert only_v2 == [Point(before_midnight.replace(minute=0), 1, 0, 0, 0)]
    assert from_midnight == days[1:] and last_hour == hours[2:]
    assert all(p.bucket.tzinfo == UTC for p in hours + days)


def test_goal_conversions_and_totals(db: Engine, versions: list[int]) -> None:
    v1, v2, _ = versions
    with db.connect() as conn:
        assert analytics.journey_totals(conn, [v1]) == Point(analytics.EPOCH, 0, 0, 0, 0)
        assert analytics.goal_conversions(conn, [v1]) == {}
    counted(db, [
        (v1, JOURNEY_LEVEL, "entered", NOW + HOUR, 3), (v2, JOURNEY_LEVEL, "entered", NOW, 2),
        (v1, JOURNEY_LEVEL, "converted:bought", NOW + HOUR, 1), (v2, JOURNEY_LEVEL, "converted:bought", NOW, 1),
        (v2, JOURNEY_LEVEL, "converted:liked", NOW, 1), (v1, JOURNEY_LEVEL, "completed", NOW + 2 * HOUR, 1),
        (v1, "wait", "converted", NOW, 5),
    ])
    with db.connect() as conn:
        assert analytics.goal_conversions(conn, [v1, v2]) == {"bought": 2, "liked": 1}
        assert analytics.journey_totals(conn, [v1, v2]) == Point(NOW.replace(minute=0), 5, 3, 0, 1)
        assert analytics.journey_totals(conn, [v1]) == Point((NOW + HOUR).replace(minute=0), 3, 1, 0, 1)


def test_arm_figures_pair_each_arm_with_its_conversions(db: Engine, versions: list[int]) -> None:
    v1, v2, _ = versions
    counted(db, [
        (v1, "ab", "arm:ab.a", NOW, 4), (v1, "ab", "arm:ab.a", NOW + HOUR, 6), (v1, "ab", "arm:ab.b", NOW, 9),
        (v1, "ab", "arm_converted:ab.a", NOW + HOUR, 3), (v1, "cd", "arm:cd.x", NOW, 2),
        (v2, "ab", "arm:ab.a", NOW, 50), (v1, JOURNEY_LEVEL, "converted:bought", NOW, 3),
    ])
    with db.connect() as conn:
        assert analytics.arm_figures(conn, v1) == [ArmFigures("ab", "ab.a", 10, 3), ArmFigures("ab", "ab.b", 9, 0),
                                                   ArmFigures("cd", "cd.x", 2, 0)]
        assert analytics.arm_figures(conn, v1, ["cd"]) == [ArmFigures("cd", "cd.x", 2, 0)]
        assert analytics.arm_figures(conn, v1, []) == []


def test_live_runs_per_version(db: Engine, versions: list[int]) -> None:
    v1, v2, v3 = versions
    counted(db, [(v1, JOURNEY_LEVEL, "live", NOW, 4), (v1, JOURNEY_LEVEL, "live", NOW + HOUR, -1),
                 (v2, JOURNEY_LEVEL, "live", NOW, 2), (v2, JOURNEY_LEVEL, "live", NOW + HOUR, -2),
                 (v1, "wait", "waiting", NOW, 7)])
    with db.connect() as conn:
        assert analytics.live_runs(conn, [v1, v2, v3]) == {v1: 3, v2: 0, v3: 0}
        assert analytics.live_runs(conn, []) == {}


@contextmanager
def statements(db: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", record)


def test_each_question_is_one_query_that_never_reads_the_runs(db: Engine, versions: list[int]) -> None:
    v1, v2, _ = versions
    counted(db, [(v1, "wait", "entered", NOW, 1), (v2, JOURNEY_LEVEL, "live", NOW, 1)])
    with db.connect() as conn, statements(db) as seen:
        analytics.step_figures(conn, versions)
        analytics.step_series(conn, versions, "day")
        analytics.journey_series(conn, versions, "day")
        analytics.goal_conversions(conn, versions)
        analytics.journey_totals(conn, versions)
        analytics.arm_figures(conn, v1)
        analytics.live_runs(conn, versions)
    queries = [s for s in seen if s != "BEGIN"]  # SQLite's, see storage.database
    assert len(queries) == 7
    assert all("step_counters" in s and "journey_runs" not in s and "GROUP BY" in s for s in queries)


def test_the_gauges_start_from_the_runs_already_in_flight(empty_db: Engine) -> None:
    """Migration 0006: runs that were waiting before the engine kept gauges get their +1."""
    with empty_db.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    with empty_db.begin() as conn:
        v1, v2 = add_versions(conn, 2)
        journey_id = conn.execute(journey_versions.select().where(journey_versions.c.id == v1)).one().journey_id
        people = [conn.execute(insert(profiles).values(traits={}, tags=[], created_at=NOW, updated_at=NOW)
                               .returning(profiles.c.id)).scalar_one() for _ in range(5)]
        for person, version, state, step in [(people[0], v1, "waiting", "wait"), (people[1], v1, "waiting", "wait"),
                                             (people[2], v1, "waiting", "look"), (people[3], v1, "completed", None),
                                             (people[4], v2, "active", "sms"), (people[0], v2, "exited", "wait")]:
            conn.execute(insert(journey_runs).values(profile_id=person, journey_id=journey_id, version_id=version,
                                                     state=state, step_id=step, entered_at=NOW, updated_at=NOW))
    migrate(empty_db)
    with empty_db.connect() as conn:
        assert analytics.live_runs(conn, [v1, v2]) == {v1: 3, v2: 1}
        waiting = {step: f.waiting for step, f in analytics.step_figures(conn, [v1, v2]).items()}
    assert waiting == {"wait": 2, "look": 1}
    with empty_db.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    with empty_db.connect() as conn:
        assert analytics.step_figures(conn, [v1, v2]) == {}
