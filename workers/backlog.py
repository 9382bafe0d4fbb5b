"""The sweeper's reads of PostgreSQL: which partitions have events waiting, how many timers and
outbox rows are due. Each read is bounded (LIMIT), so a million-row backlog costs the same sweep
as a thousand-row one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, func, or_, select

from actions.outbox import DUE_STATUSES
from storage.tables import events, journey_runs, journeys, outbox, timers

from .constants import PENDING_SCAN


def pending_partitions(conn: Connection, partitions: int) -> frozenset[int]:
    """Partitions holding one of the oldest `PENDING_SCAN` unapplied events; all of them when
    the scan is full (a backlog that large is everywhere)."""
    oldest = (select((events.c.profile_id % partitions).label("part")).where(events.c.processed_at.is_(None))
              .order_by(events.c.id).limit(PENDING_SCAN).subquery())
    found = conn.execute(select(oldest.c.part, func.count()).group_by(oldest.c.part)).all()
    if sum(n for _, n in found) >= PENDING_SCAN:
        return frozenset(range(partitions))
    return frozenset(int(k) for k, _ in found)


def due_timers(conn: Connection, now: datetime, cap: int) -> int:
    """Due timers of live journeys (as `Runtime.fire_due_timers` takes them), up to `cap`."""
    due = (select(timers.c.id).select_from(timers.join(journey_runs).join(
        journeys, journeys.c.id == journey_runs.c.journey_id))
        .where(and_(timers.c.due_at <= now, journeys.c.status == "live")).limit(cap).subquery())
    return int(conn.execute(select(func.count()).select_from(due)).scalar_one())


def due_outbox(conn: Connection, now: datetime, cap: int) -> int:
    """Outbox rows a dispatcher's claim would take now (or turn `uncertain`), up to `cap`."""
    due = (select(outbox.c.id).where(and_(
        outbox.c.status.in_(DUE_STATUSES), outbox.c.send_at <= now,
        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
        or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now))).limit(cap).subquery())
    return int(conn.execute(select(func.count()).select_from(due)).scalar_one())
