"""Signatures already accepted, so a captured signed request cannot be sent again.

A signature is valid for its tolerance window; within it, the first request carrying it is
accepted and any later one (to the same or, as the signature covers the method and path, any
route) refused. Kept in the database so that every server process refuses what another one
accepted; rows past `expires_at` are deleted as new ones arrive.

The primary key decides: `first_use` inserts with ON CONFLICT DO NOTHING and reads back what it
inserted, so of two requests racing with one signature (in one process or two), exactly one
gets its row back; on PostgreSQL the second waits for the first's commit, and inserts after
all if the first rolled back. Each insert also deletes a few expired rows, the oldest first:
with no sweeper job to run, the table stays near the signatures of one window, and each
request's share of the cleanup is an index range scan of `SWEEP_ROWS` rows at most.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Connection, Index, String, Table, delete, func, select

from .tables import metadata
from .types import UTCDateTime
from .upserts import upsert_into

SWEEP_ROWS = 16  # expired rows deleted per insert: more than one, so a backlog drains as traffic goes on

seen_signatures = Table(
    "seen_signatures",
    metadata,
    Column("signature", String, primary_key=True),  # the v2 hex digest
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_seen_signatures_expires_at", "expires_at"),
)


def first_use(conn: Connection, signature: str, expires_at: datetime, now: datetime) -> bool:
    """Record `signature` as used until `expires_at`; False if it was recorded already (a
    replay). Call it in a write transaction: the row must commit with the request's acceptance."""
    insert = upsert_into(seen_signatures, conn)
    statement = (insert.values(signature=signature, expires_at=expires_at)
                 .on_conflict_do_nothing().returning(seen_signatures.c.signature))
    inserted = conn.execute(statement).first() is not None
    sweep(conn, now)
    return inserted


def sweep(conn: Connection, now: datetime, limit: int = SWEEP_ROWS) -> int:
    """Delete up to `limit` rows expired at `now`, oldest first; how many went. SKIP LOCKED
    (PostgreSQL; SQLite has one writer and no row locks) lets concurrent requests each take
    other rows rather than queue behind one another's deletes."""
    oldest = (select(seen_signatures.c.signature).where(seen_signatures.c.expires_at <= now)
              .order_by(seen_signatures.c.expires_at).limit(limit).with_for_update(skip_locked=True))
    return conn.execute(delete(seen_signatures).where(seen_signatures.c.signature.in_(oldest))).rowcount


def count(conn: Connection) -> int:
    """How many signatures are remembered (for tests and metrics)."""
    return int(conn.execute(select(func.count()).select_from(seen_signatures)).scalar_one())
