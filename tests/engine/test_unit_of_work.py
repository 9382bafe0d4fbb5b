"""Batching must not change what happens: a batch of events applied in one unit of work ends
where the same events applied one at a time end, on either backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from dsl import compile_source
from dsl.graph import SplitNode
from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime
from engine.splits import choose_arm
from engine.unit_of_work import ConcurrentUpdate, UnitOfWork
from storage import connect, migrate, writer
from storage.tables import conversions, journey_runs, journeys, outbox, profiles

from .workload import generate_messages

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def ping(user: str, message_id: str, at: datetime = T0) -> Any:
    return parse_message({"type": "track", "event": "ping", "userId": user, "messageId": message_id,
                          "timestamp": at.isoformat()}, at)


def outcome(db: Engine) -> dict[str, Any]:
    """Everything observable, keyed by what does not depend on row ids."""
    with db.connect() as conn:
        who = {r.id: r.first_identity for r in conn.execute(select(profiles.c.id, profiles.c.first_identity))}
        slug = {r.id: r.slug for r in conn.execute(select(journeys.c.id, journeys.c.slug))}
        runs = sorted((who[r.profile_id], slug[r.journey_id], r.state, r.step_id, str(r.wake_at), str(r.split_arms))
                      for r in conn.execute(select(journey_runs)))
        sent = sorted((who[r.profile_id], slug[r.journey_id or 0] if r.journey_id else "", r.step_id, r.channel,
                       r.status, str(r.send_at), str(sorted(r.payload.items())))
                      for r in conn.execute(select(outbox)))
        users = sorted((who[r.id], str(sorted(r.traits.items())), str(r.tags))
                       for r in conn.execute(select(profiles).where(profiles.c.merged_into.is_(None))))
        goals = sorted(r.goal for r in conn.execute(select(conversions)))
    return {"runs": runs, "outbox": sent, "profiles": users, "conversions": goals}


def run_examples(db: Engine, batch: int) -> dict[str, Any]:
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    for path in sorted((ROOT / "examples/journeys").glob("*.journey")):
        runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
    messages = generate_messages(users=25, count=400, start=T0)
    for start in range(0, len(messages), 100):
        chunk = messages[start:start + 100]
        clock.move_to(chunk[-1].timestamp)
        runtime.accept(chunk)
        while runtime.process_events(batch):
            pass
    clock.move_to(clock.now() + timedelta(days=60))
    while runtime.fire_due_timers(batch):
        pass
    return outcome(db)


def test_a_batch_ends_where_one_event_at_a_time_ends(db: Engine) -> None:
    reference = connect("sqlite://")
    migrate(reference)
    one_by_one = run_examples(reference, batch=1)
    batched = run_examples(db, batch=100)
    assert one_by_one["outbox"], "the workload must send something, or this proves nothing"
    assert batched == one_by_one


CAPPED = '''journey "Capped"
  trigger event "ping"
  entry always
  frequency cap sms 1 messages per 1d

  @hello send sms "hello"
'''


def test_a_frequency_cap_counts_the_messages_of_the_same_batch(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    runtime.publish(CAPPED)
    runtime.accept([ping("u1", "m1"), ping("u1", "m2"), ping("u1", "m3")])
    assert runtime.process_events() == 3
    with db.connect() as conn:
        statuses = sorted(r.status for r in conn.execute(select(outbox)))
    assert statuses == ["pending", "suppressed", "suppressed"]


SPLIT = '''journey "Split"
  trigger event "ping"

  @ab split "ab":
    50%:
      @a send sms "a"
    50%:
      @b send sms "b"
'''


def test_a_split_is_keyed_by_the_users_identity_not_a_row_id(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    runtime.publish(SPLIT)
    users = [f"u{i}" for i in range(20)]
    runtime.accept([ping(u, f"m-{u}") for u in users])
    runtime.process_events()
    node = compile_source(SPLIT).nodes["ab"]
    assert isinstance(node, SplitNode)
    with db.connect() as conn:
        taken = {r.first_identity: r.step_id for r in conn.execute(
            select(profiles.c.first_identity, outbox.c.step_id).join(outbox, outbox.c.profile_id == profiles.c.id))}
    expected = {f"user_id:{u}": choose_arm(node.arms, f"user_id:{u}", "split", "ab").target for u in users}
    assert taken == expected
    assert set(taken.values()) == {"a", "b"}


def test_a_run_changed_under_the_unit_fails_the_flush(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    runtime.publish('journey "Wait"\n  trigger event "ping"\n\n  @w wait 1d\n')
    runtime.accept([ping("u1", "m1")])
    runtime.process_events()
    with pytest.raises(ConcurrentUpdate), writer(db).begin() as conn:
        unit = UnitOfWork(conn, T0)
        (profile_id,) = conn.execute(select(profiles.c.id)).scalars()
        unit.load_users([profile_id])
        (run,) = unit.runs.values()
        conn.execute(update(journey_runs).values(row_version=journey_runs.c.row_version + 1))  # someone else
        run.state = "exited"
        run.dirty = True
        unit.flush()
    with db.connect() as conn:
        assert conn.execute(select(journey_runs.c.state)).scalar_one() == "waiting"  # rolled back
