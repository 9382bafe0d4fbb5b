"""Per-step analytics: how many runs entered, left, converted... each step, per UTC hour."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection

from .tables import LIVE_RUN_STATES, step_counters
from .upserts import upsert_into

# (version_id, step_id, metric, moment, n): add n to that step's metric in the hour of moment.
CounterRow = tuple[int, str, str, datetime, int]
# Where a run is, as the gauges see it: (state, step id).
Place = tuple[str, str | None]

JOURNEY_LEVEL = "__journey__"  # the step id under which journey-wide counters are kept
# Metrics. Most count happenings: their buckets add up to a total over any span of time. The
# gauges go up and down (+1 when a run arrives, -1 when it leaves), so only their sum over all
# buckets means something: how many runs are there now.
ENTERED = "entered"  # a step: runs that moved into it; the journey: runs started
EXITED = "exited"  # a step: runs that left the journey there; the journey: all exits
COMPLETED = "completed"  # the journey: runs that reached the end
CONVERTED = "converted"  # a step: runs at it when they reached a goal, once per goal
CONVERTED_GOAL = "converted:"  # the journey, followed by the goal's name: runs credited with it
SUPPRESSED = "suppressed"  # a send step: messages a frequency cap held back
CANCELLED = "cancelled"  # a send step: messages held by quiet hours, cancelled when the run exited
ARM = "arm:"  # a split step, followed by the arm's id: runs that took the arm
# A split step, followed by the arm's id: runs of the arm whose first conversion (any goal) came
# after they took it. A run that converted before it reached the split never counts for that
# split's arms, even if it reaches another goal later: the arm cannot have caused it.
ARM_CONVERTED = "arm_converted:"
WAITING = "waiting"  # gauge, a step: runs waiting there now
LIVE = "live"  # gauge, the journey: runs still in it (active or waiting)


def hour_bucket(moment: datetime) -> datetime:
    """The start of the UTC hour that holds `moment` (which must be timezone-aware)."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def increment(conn: Connection, rows: Iterable[CounterRow]) -> None:
    """Add every row's `n` to its counter in one batched upsert, within the caller's transaction.

    Rows for the same counter are summed first, so each counter is written once (PostgreSQL
    refuses to update a row twice in one multi-row statement). `moment` may be any aware
    datetime: it counts in the UTC hour that holds it. Counters are written in key order, so
    concurrent batches lock rows in the same order and cannot deadlock each other.
    """
    totals = summed(rows)
    if not totals:
        return
    insert = upsert_into(step_counters, conn)
    upsert = insert.on_conflict_do_update(
        index_elements=list(step_counters.primary_key.columns),
        set_={"count": step_counters.c.count + insert.excluded.count},
    )
    conn.execute(
        upsert,
        [{"version_id": v, "step_id": s, "metric": m, "bucket": b, "count": n} for v, s, m, b, n in totals],
    )


# `increment` as SQL text for the driver's executemany (the engine's flush, `?` for a value):
# the same upsert, below SQLAlchemy's per-row processing. Rows come from `summed`.
UPSERT_SQL = ("INSERT INTO step_counters (version_id, step_id, metric, bucket, count) VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT (version_id, step_id, metric, bucket) DO UPDATE SET count = step_counters.count + "
              "excluded.count")


def summed(rows: Iterable[CounterRow]) -> list[CounterRow]:
    """The rows summed per counter (each hour's bucket as its moment), without those that sum
    to zero (a gauge's +1 and -1 in one hour cancel), in key order: what `increment` writes."""
    totals: dict[tuple[int, str, str, datetime], int] = {}
    for version_id, step_id, metric, moment, n in rows:
        key = (version_id, step_id, metric, hour_bucket(moment))
        totals[key] = totals.get(key, 0) + n
    return [(v, s, m, b, n) for (v, s, m, b), n in sorted(totals.items()) if n]


def moves(version_id: int, before: Place | None, after: Place | None, moment: datetime) -> list[CounterRow]:
    """The gauge changes of one run going from `before` to `after` (None: the run did not exist
    yet, or is gone). Derived from the two places rather than from what happened in between,
    so they are exact whatever moved the run: a timer, an event, a reply, an exit, a merge."""
    if before == after:
        return []
    rows: list[CounterRow] = []
    for place, n in ((before, -1), (after, 1)):
        if place is not None and place[0] == "waiting" and place[1] is not None:
            rows.append((version_id, place[1], WAITING, moment, n))
    was_live, is_live = (p is not None and p[0] in LIVE_RUN_STATES for p in (before, after))
    if was_live != is_live:
        rows.append((version_id, JOURNEY_LEVEL, LIVE, moment, 1 if is_live else -1))
    return rows


