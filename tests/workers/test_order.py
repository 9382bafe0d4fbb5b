"""Several worker processes on one queue: each user's events applied once and in order, each
message sent once."""

from __future__ import annotations

from sqlalchemy import Engine

from .fleet import Fleet, wait_until
from .workload import outbox_statuses, outcome, pings, publish_order, unapplied

USERS, PINGS, WORKERS = 30, 40, 3


def test_many_workers_apply_each_users_events_in_order_and_once(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(USERS, PINGS // 2))
    for _ in range(WORKERS):
        fleet.start("--concurrency", "4", batch=50)
    # More pings while they work, so batches of one user meet in flight.
    runtime.accept(pings(USERS, PINGS // 2, start=PINGS // 2 + 1))
    wait_until(lambda: unapplied(db) == 0, 120, "every event applied")
    wait_until(lambda: outbox_statuses(db) == {"sent": USERS * PINGS}, 120, "every message sent")

    result = outcome(db)
    assert result.events == USERS + USERS * PINGS
    assert result.out_of_order == 0
    assert result.seen == [PINGS] * USERS
    assert result.outbox_rows == result.distinct_keys == USERS * PINGS
