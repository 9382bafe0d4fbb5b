"""The sweeper's plan, from tables: which jobs, under which ids."""

from __future__ import annotations

import pytest

from workers.config import WorkerConfig
from workers.errors import ConfigInvalid
from workers.plan import Backlog, Enqueue, lanes_for, plan

PG = "postgresql+psycopg://postgres@127.0.0.1/test"


@pytest.mark.parametrize(("due", "batch", "lanes", "expected"), [
    (0, 500, 16, 0),
    (1, 500, 16, 1),
    (500, 500, 16, 1),
    (501, 500, 16, 2),
    (100_000, 500, 16, 16),
    (3, 1, 2, 2),
])
def test_lanes_follow_the_backlog_up_to_the_partition_count(due: int, batch: int, lanes: int, expected: int) -> None:
    assert lanes_for(due, batch, lanes) == expected


def test_each_kind_of_work_gets_fixed_ids_under_the_queue_name() -> None:
    jobs = plan(Backlog(frozenset({3, 0}), timers_due=600, outbox_due=1, schedules_due=True), "q1", 4, 500)
    assert jobs == [
        Enqueue("process_partition", (0, 4), "q1:events:0/4"),
        Enqueue("process_partition", (3, 4), "q1:events:3/4"),
        Enqueue("fire_timers", (0,), "q1:timers:0"),
        Enqueue("fire_timers", (1,), "q1:timers:1"),
        Enqueue("dispatch_outbox", (0,), "q1:outbox:0"),
        Enqueue("run_schedules", (), "q1:schedules"),
    ]


def test_nothing_waiting_means_no_job() -> None:
    assert plan(Backlog(frozenset(), 0, 0, False), "q", 8, 500) == []


def test_a_partition_outside_the_layout_is_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        plan(Backlog(frozenset({4}), 0, 0, False), "q", 4, 500)


@pytest.mark.parametrize(("changes", "message"), [
    ({"partitions": 0}, "--partitions must be at least 1"),
    ({"concurrency": 0}, "--concurrency must be at least 1"),
    ({"queue": "a b"}, "no spaces"),
    ({"queue": "q*"}, "glob"),
    ({"redis_url": "http://x"}, "redis:// URL"),
    ({"database_url": "sqlite:///x.db"}, "workers need PostgreSQL"),
    ({"job_timeout": 0}, "--job-timeout"),
])
def test_bad_settings_are_refused_with_their_name(changes: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"redis_url": "redis://127.0.0.1:6379/0", "database_url": PG, **changes}
    with pytest.raises(ConfigInvalid, match=message):
        WorkerConfig(**settings)  # type: ignore[arg-type]
