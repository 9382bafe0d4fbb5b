"""The workload of the worker tests: users who each send numbered pings, and a journey that
notices a ping applied out of order or twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from engine.clock import SystemClock
from engine.messages import Message, parse_message
from engine.runtime import Runtime
from storage.tables import events, outbox, profiles

# Each ping counts itself on the profile; a ping whose number is not the count so far + 1 was
# applied out of order (or a second time), and tags the user.
ORDER = '''journey "Order"
  trigger event "ping"
  entry always

  @count update user.seen += 1
  @check if user.seen != event.n:
    @broken add tag "out_of_order"
  @reply send sms "pong {{ event.n }}"
'''
OUT_OF_ORDER = "out_of_order"


def pings(users: int, per_user: int, start: int = 1, prefix: str = "m") -> list[Message]:
    """`per_user` numbered pings for each user, interleaved across users, in time order; the
    first batch also gives each user a phone (an identify) so the sms can be sent."""
    now = datetime.now(UTC)
    out = []
    if start == 1:
        out += [parse_message({"type": "identify", "userId": f"u{u}", "traits": {"phone": f"+86138{u:08d}"},
                               "messageId": f"{prefix}-id-{u}", "timestamp": now.isoformat()}, now)
                for u in range(users)]
    for n in range(start, start + per_user):
        at = now + timedelta(milliseconds=n)
        out += [parse_message({"type": "track", "event": "ping", "userId": f"u{u}", "properties": {"n": n},
                               "messageId": f"{prefix}-{u}-{n}", "timestamp": at.isoformat()}, at)
                for u in range(users)]
    return out


def publish_order(db: Engine) -> Runtime:
    runtime = Runtime(db, SystemClock())
    runtime.publish(ORDER, slug="order")
    return runtime


def unapplied(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(events).where(events.c.processed_at.is_(None))) or 0)


def outbox_statuses(db: Engine) -> dict[str, int]:
    with db.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
        return {str(status): int(n) for status, n in rows}


@dataclass(frozen=True)
class Outcome:
    events: int
    unapplied: int
    outbox_rows: int
    distinct_keys: int
    seen: list[int]  # per user, sorted
    out_of_order: int  # users tagged


def outcome(db: Engine) -> Outcome:
    with db.connect() as conn:
        total = int(conn.scalar(select(func.count()).select_from(events)) or 0)
        rows = int(conn.scalar(select(func.count()).select_from(outbox)) or 0)
        keys = int(conn.scalar(select(func.count(func.distinct(outbox.c.idempotency_key)))) or 0)
        people = conn.execute(select(profiles.c.traits, profiles.c.tags)).all()
    return Outcome(total, unapplied(db), rows, keys, sorted(int((t or {}).get("seen") or 0) for t, _ in people),
                   sum(1 for _, tags in people if OUT_OF_ORDER in (tags or [])))
