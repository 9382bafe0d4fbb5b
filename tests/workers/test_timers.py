"""Timers live in PostgreSQL and fire once across all workers: lanes claim them with SKIP LOCKED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, update

from engine.clock import SystemClock
from engine.messages import parse_message
from engine.runtime import Runtime
from storage.tables import journey_runs, profiles, timers

from .fleet import Fleet, wait_until
from .workload import outbox_statuses, unapplied

USERS = 600
TICK = '''journey "Tick"
  trigger event "go"

  @w wait 1h
  @count update user.ticks += 1
  @done send sms "tick"
'''


def count(db: Engine, table: object, *where: object) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)  # type: ignore[arg-type]


def test_each_due_timer_fires_once_across_workers(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    _, db = pg
    runtime = Runtime(db, SystemClock())
    runtime.publish(TICK, slug="tick")
    now = datetime.now(UTC)
    runtime.accept([parse_message({"type": "identify", "userId": f"u{u}", "traits": {"phone": f"+1{u:010d}"},
                                   "messageId": f"id-{u}", "timestamp": now.isoformat()}, now) for u in range(USERS)]
                   + [parse_message({"type": "track", "event": "go", "userId": f"u{u}", "messageId": f"go-{u}",
                                     "timestamp": now.isoformat()}, now) for u in range(USERS)])
    for _ in range(3):
        fleet.start("--concurrency", "4", batch=25)
    wait_until(lambda: unapplied(db) == 0 and count(db, timers) == USERS, 60, "every user waiting with a timer")
    assert count(db, journey_runs, journey_runs.c.state == "waiting") == USERS

    with db.begin() as conn:  # the hour has passed, for every one of them at once
        conn.execute(update(timers).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
    wait_until(lambda: count(db, timers) == 0, 60, "every timer fired")
    wait_until(lambda: outbox_statuses(db) == {"sent": USERS}, 60, "every tick sent")

    assert count(db, journey_runs, journey_runs.c.state == "completed") == USERS
    with db.connect() as conn:
        ticks = sorted(int((traits or {}).get("ticks") or 0) for traits in conn.scalars(select(profiles.c.traits)))
    assert ticks == [1] * USERS
    lanes = sum(worker.text().count("fire_timers(") for worker in fleet.workers)
    assert lanes >= 2, "the timers were not split between lanes"
