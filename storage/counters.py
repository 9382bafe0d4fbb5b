"""Per-step analytics: how many runs entered, left, converted... each step, per UTC hour."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from .tables import step_counters

# (version_id, step_id, metric, moment, n): add n to that step's metric in the hour of moment.
CounterRow = tuple[int, str, str, datetime, int]


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
    totals: dict[tuple[int, str, str, datetime], int] = {}
    for version_id, step_id, metric, moment, n in rows:
        key = (version_id, step_id, metric, hour_bucket(moment))
        totals[key] = totals.get(key, 0) + n
    if not totals:
        return
    insert = _insert(conn.dialect.name)
    upsert = insert.on_conflict_do_update(
        index_elements=list(step_counters.primary_key.columns),
        set_={"count": step_counters.c.count + insert.excluded.count},
    )
    conn.execute(
        upsert,
        [
            {"version_id": v, "step_id": s, "metric": m, "bucket": b, "count": n}
            for (v, s, m, b), n in sorted(totals.items())
        ],
    )


def _insert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """`INSERT ... ON CONFLICT` reads the same on both backends, but each dialect builds its own."""
    if dialect == "postgresql":
        return postgresql.insert(step_counters)
    if dialect == "sqlite":
        return sqlite.insert(step_counters)
    raise ValueError(f"step counters need SQLite or PostgreSQL, not {dialect}")
