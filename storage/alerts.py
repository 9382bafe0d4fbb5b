"""Alerts: things an operator must hear about (a coupon pool ran dry), once per subject per hour.

An alert is a row (for the API and builder to show) and a log warning (for whatever watches the
logs). A pool that runs dry during a big journey is asked for a code thousands of times an
hour; the unique (kind, subject, hour) key turns all of those into one row and one warning.
Written in the caller's transaction, so an alert exists exactly when what caused it committed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection, select

from .counters import hour_bucket
from .tables import alerts
from .upserts import upsert_into

logger = logging.getLogger("journeyflow.alerts")

COUPON_POOL_EMPTY = "coupon_pool_empty"
COUPON_POOL_MISSING = "coupon_pool_missing"
UNKNOWN_TIME_ZONE = "unknown_time_zone"  # a profile's zone the tz database does not know: falls back


def raise_alert(conn: Connection, kind: str, subject: str, message: str, now: datetime) -> bool:
    """Record the alert unless one of this kind and subject exists for this hour; True if new."""
    insert = upsert_into(alerts, conn)
    statement = insert.values(kind=kind, subject=subject, bucket=hour_bucket(now), message=message, created_at=now)
    created = conn.execute(statement.on_conflict_do_nothing().returning(alerts.c.id)).first() is not None
    if created:
        logger.warning("%s: %s", kind, message)
    return created


def recent(conn: Connection, limit: int = 100) -> list[tuple[datetime, str, str, str]]:
    """The newest alerts: (created at, kind, subject, message)."""
    query = (select(alerts.c.created_at, alerts.c.kind, alerts.c.subject, alerts.c.message)
             .order_by(alerts.c.created_at.desc(), alerts.c.id.desc()).limit(limit))
    return [(row.created_at, row.kind, row.subject, row.message) for row in conn.execute(query)]
