"""`trigger schedule` against real databases (SQLite and PostgreSQL): in each user's own zone
by default, at one instant for everyone `in journey zone`; missed ticks catch up once per
zone; a pass cut short resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime, TraceRecord
from engine.timing import first_zone
from engine.unit_of_work import UnitOfWork
from storage.tables import journey_runs, outbox, profiles, schedule_ticks

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
ZONES: dict[str, str | None] = {"shanghai": "Asia/Shanghai", "london": "Europe/London",
                                "new_york": "America/New_York", "nowhere": None, "mars": "Mars/Olympus_Mons"}
JOURNEY_ZONE = "Asia/Tokyo"  # 09:30 there is 00:30 UTC


def morning(zone_clause: str = "", timezone: str | None = JOURNEY_ZONE, cron: str = "30 9 * * *") -> str:
    zone_line = f'  timezone "{timezone}"\n' if timezone else ""
    return (f'journey "Morning"\n  trigger schedule "{cron}"{zone_clause}\n{zone_line}'
            '  entry always\n\n  @hello send sms "good morning"\n')


def identify(runtime: Runtime, users: dict[str, str | None], at: datetime) -> None:
    runtime.accept([parse_message({"type": "identify", "userId": user, "messageId": f"id-{user}",
                                   "traits": {"timezone": name} if name else {}}, at)
                    for user, name in users.items()])
    runtime.process_events()


def step(runtime: Runtime, clock: VirtualClock, until: datetime) -> None:
    """As `journeyflow simulate` does: move to each next tick and run what is due."""
    while (tick := runtime.next_schedule_due()) is not None and tick <= until:
        clock.move_to(tick)
        runtime.run_due_schedules(batch=2)


def entries(db: Engine) -> dict[str, list[datetime]]:
    """user id -> the instants their runs entered, in order."""
    found: dict[str, list[datetime]] = {}
    with db.connect() as conn:
        for user, at in conn.execute(select(profiles.c.first_identity, journey_runs.c.entered_at)
                                     .join(profiles, profiles.c.id == journey_runs.c.profile_id)
                                     .order_by(journey_runs.c.entered_at)):
            found.setdefault(user.removeprefix("user_id:"), []).append(at)
    return found


def ticks(db: Engine) -> list[tuple[datetime, int]]:
    with db.connect() as conn:
        return [(t.due_at, t.entered) for t in conn.execute(select(schedule_ticks).order_by(schedule_ticks.c.due_at))]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


def test_each_user_enters_at_0930_of_their_own_zone_once_a_day(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(morning())
    identify(runtime, ZONES, T0)
    step(runtime, clock, T0 + timedelta(days=2))
    found = entries(db)
    assert found == {
        "nowhere": [utc(2026, 6, 1, 0, 30), utc(2026, 6, 2, 0, 30)],  # the journey's zone: Tokyo
        "mars": [utc(2026, 6, 1, 0, 30), utc(2026, 6, 2, 0, 30)],  # unknown: as if it had none
        "shanghai": [utc(2026, 6, 1, 1, 30), utc(2026, 6, 2, 1, 30)],
        "london": [utc(2026, 6, 1, 8, 30), utc(2026, 6, 2, 8, 30)],  # BST
        "new_york": [utc(2026, 6, 1, 13, 30), utc(2026, 6, 2, 13, 30)],
    }
    for user, name in ZONES.items():
        local = first_zone(name, JOURNEY_ZONE)
        assert {(t.astimezone(local).hour, t.astimezone(local).minute) for t in found[user]} == {(9, 30)}
    assert [entered for _, entered in ticks(db)] == [2, 1, 1, 1] * 2  # one tick per instant


def test_in_journey_zone_everyone_enters_at_one_instant(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(morning(" in journey zone"))
    identify(runtime, ZONES, T0)
    step(runtime, clock, T0 + timedelta(days=1, hours=12))
    assert entries(db) == {user: [utc(2026, 6, 1, 0, 30), utc(2026, 6, 2, 0, 30)] for user in ZONES}
    assert ticks(db) == [(utc(2026, 6, 1, 0, 30), 5), (utc(2026, 6, 2, 0, 30), 5)]


def test_a_journey_without_a_zone_reads_the_installations(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock, default_zone="Asia/Shanghai")
    runtime.publish(morning(" in journey zone", timezone=None))
    identify(runtime, ZONES, T0)
    assert runtime.next_schedule_due() == utc(2026, 6, 1, 1, 30)
    runtime_user = Runtime(db, clock, default_zone="Asia/Shanghai")
    runtime_user.publish(morning(timezone=None), slug="morning-user")
    step(runtime_user, clock, T0 + timedelta(hours=2))
    # both journeys at Shanghai's 09:30; in the user-zone one, the two without a known zone too
    assert {user: len(at) for user, at in entries(db).items()} == {"shanghai": 2, "nowhere": 2, "mars": 2,
                                                                   "london": 1, "new_york": 1}


def test_new_york_enters_at_0930_local_across_the_spring_forward(db: Engine) -> None:
    clock = VirtualClock(utc(2026, 3, 7, 0, 0))
    runtime = Runtime(db, clock)
    runtime.publish(morning())
    identify(runtime, {"new_york": "America/New_York", "london": "Europe/London"}, clock.now())
    step(runtime, clock, utc(2026, 3, 10, 0, 0))
    found = entries(db)
    # 2026-03-08 02:00 EST -> 03:00 EDT: 09:30 is 14:30 UTC before, 13:30 UTC after
    assert found["new_york"] == [utc(2026, 3, 7, 14, 30), utc(2026, 3, 8, 13, 30), utc(2026, 3, 9, 13, 30)]
    assert found["london"] == [utc(2026, 3, 7, 9, 30), utc(2026, 3, 8, 9, 30), utc(2026, 3, 9, 9, 30)]


def test_a_time_skipped_in_new_york_fires_after_the_jump_once(db: Engine) -> None:
    clock = VirtualClock(utc(2026, 3, 7, 0, 0))
    runtime = Runtime(db, clock)
    runtime.publish(morning(cron="30 2 * * *"))
    identify(runtime, {"new_york": "America/New_York", "london": "Europe/London"}, clock.now())
    step(runtime, clock, utc(2026, 3, 9, 12, 0))
    # 02:30 does not exist on the 8th: taken as 03:30 EDT, 07:30 UTC, while London's 02:30 GMT
    # is 02:30 UTC
    assert entries(db)["new_york"] == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]


def test_a_missed_day_fires_once_late_per_zone(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(morning())
    identify(runtime, ZONES, T0)
    clock.move_to(utc(2026, 6, 3, 12, 0))  # down for two and a half days
    assert runtime.run_due_schedules() == 5  # everyone once, for their zone's latest missed 09:30
    assert runtime.run_due_schedules() == 0
    assert ticks(db) == [(utc(2026, 6, 2, 13, 30), 1),  # New York's, the 2nd (the 3rd's is still ahead)
                         (utc(2026, 6, 3, 0, 30), 2),  # the journey's zone: no zone and Mars
                         (utc(2026, 6, 3, 1, 30), 1), (utc(2026, 6, 3, 8, 30), 1)]
    assert {user: len(at) for user, at in entries(db).items()} == dict.fromkeys(ZONES, 1)
    assert runtime.next_schedule_due() == utc(2026, 6, 3, 13, 30)


def test_a_tick_reads_only_the_profiles_of_its_zones(db: Engine, clock: VirtualClock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(morning())
    identify(runtime, {f"u{i}": ("Asia/Shanghai" if i % 3 == 0 else "Europe/London") for i in range(12)}, T0)
    loaded: list[int] = []
    original = UnitOfWork.load_users

    def spy(self: UnitOfWork, ids: Any) -> Any:
        loaded.extend(ids)
        return original(self, ids)

    monkeypatch.setattr(UnitOfWork, "load_users", spy)
    clock.move_to(utc(2026, 6, 1, 1, 30))
    assert runtime.run_due_schedules(batch=2) == 4
    with db.connect() as conn:
        shanghai = set(conn.execute(select(profiles.c.id).where(profiles.c.timezone == "Asia/Shanghai")).scalars())
    assert set(loaded) == shanghai  # no London profile was read


def test_a_user_zone_pass_cut_short_resumes_where_it_stopped(db: Engine, clock: VirtualClock) -> None:
    class Crash(Exception):
        pass

    def crash_after_first_batch(record: TraceRecord) -> None:
        raise Crash  # the traces of a batch are published after its transaction commits

    runtime = Runtime(db, clock, observer=crash_after_first_batch)
    runtime.publish(morning())
    identify(runtime, {f"u{i}": ("Asia/Shanghai" if i % 2 else "Europe/London") for i in range(20)}, T0)
    clock.move_to(utc(2026, 6, 1, 1, 31))
    with pytest.raises(Crash):
        runtime.run_due_schedules(batch=4)
    with db.connect() as conn:
        first = len(list(conn.execute(select(outbox))))
    assert first == 4
    restarted = Runtime(db, clock)
    assert restarted.run_due_schedules(batch=4) == 10 - first
    assert restarted.run_due_schedules(batch=4) == 0
    found = entries(db)
    assert sorted(found) == sorted(f"u{i}" for i in range(1, 20, 2))  # Shanghai's, once each
    assert all(len(at) == 1 for at in found.values())
    assert ticks(db) == [(utc(2026, 6, 1, 1, 30), 10)]


def test_a_tick_too_old_to_catch_up_is_not_reported_as_due(db: Engine, clock: VirtualClock) -> None:
    runtime = Runtime(db, clock)
    runtime.publish(morning(cron="30 9 * * 1"))  # Mondays; 2026-06-01 is one
    identify(runtime, {"shanghai": "Asia/Shanghai"}, T0)
    clock.move_to(utc(2026, 6, 3, 0, 0))  # Monday's 09:30 (01:30 UTC) is more than a day ago
    assert runtime.run_due_schedules() == 0
    assert runtime.next_schedule_due() == utc(2026, 6, 8, 1, 30)  # not Monday's, forever due
