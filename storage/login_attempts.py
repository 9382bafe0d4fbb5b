"""Counted login attempts, shared by every server process through the database.

A throttle kept in one process's memory is bypassed by sending guesses concurrently (each is
checked before any failure is recorded) or to another process. Here an attempt is counted,
atomically, before its password is checked: `key` names what is counted (an account, a
source address, an account from one source, a trusted device), `attempts` how many were made
in the window that ends at `window_ends_at`.

Windows are fixed: the first attempt opens one, and the first attempt after it has ended
starts the count again at one. Rows whose window has ended mean nothing any more; callers
delete them a small batch at a time (`delete_ended`), so the table holds at most what the
last window's attempts created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, Index, Integer, String, Table, case, delete, select, update

from .tables import metadata
from .types import UTCDateTime
from .upserts import upsert_into

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("key", String, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("window_ends_at", UTCDateTime, nullable=False),
    Index("ix_login_attempts_window_ends_at", "window_ends_at"),
)


@dataclass(frozen=True)
class Count:
    """A key's attempts so far in its window, this one included, and when the window ends."""

    attempts: int
    window_ends_at: datetime


def count(conn: Connection, key: str, window: timedelta, now: datetime) -> Count:
    """One more attempt against `key`, in one statement, so that concurrent attempts (from any
    process) each get a different count and none is lost: the caller refuses those past its
    allowance. A key seen for the first time, or whose window ended, starts a window of
    `window` from `now` at one attempt.

    Run it in a short transaction of its own, committed before the password is checked: the
    row stays locked until then, and every other attempt at that key waits for it.
    """
    table = login_attempts
    insert = upsert_into(login_attempts, conn).values(key=key, attempts=1, window_ends_at=now + window)
    ended = table.c.window_ends_at <= now
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "attempts": case((ended, 1), else_=table.c.attempts + 1),
            "window_ends_at": case((ended, insert.excluded.window_ends_at), else_=table.c.window_ends_at),
        },
    ).returning(table.c.attempts, table.c.window_ends_at)
    row = conn.execute(upsert).one()
    return Count(row.attempts, row.window_ends_at)


def forget(conn: Connection, key: str) -> None:
    """Start `key` afresh (a success clears the count it proved was no guessing). One key per
    call, so that a caller can lock keys in the same order as its `count`s did."""
    conn.execute(delete(login_attempts).where(login_attempts.c.key == key))


def refund(conn: Connection, key: str, window_ends_at: datetime) -> None:
    """Take one attempt back from `key`, if its window is still the one that counted it: a
    successful attempt was no guess, but the other attempts in the window may have been."""
    conn.execute(update(login_attempts)
                 .where(login_attempts.c.key == key, login_attempts.c.window_ends_at == window_ends_at,
                        login_attempts.c.attempts > 0)
                 .values(attempts=login_attempts.c.attempts - 1))


def delete_ended(conn: Connection, now: datetime, limit: int) -> int:
    """Delete up to `limit` rows whose window ended by `now`; how many went.

    Small batches keep each call cheap (an index range scan); called once per attempt, it
    deletes rows faster than attempts create them. On PostgreSQL, rows another transaction is
    counting are skipped rather than waited for, so this never blocks (nor deadlocks with) a
    login; SQLite has one writer at a time anyway.
    """
    ended = login_attempts.c.window_ends_at <= now
    batch = select(login_attempts.c.key).where(ended).limit(limit).with_for_update(skip_locked=True)
    result = conn.execute(delete(login_attempts).where(login_attempts.c.key.in_(batch), ended))
    return int(result.rowcount)


def attempts(conn: Connection, key: str, now: datetime) -> int:
    """The attempts `key` has made in its current window (0 if none, or if it ended)."""
    found = conn.execute(select(login_attempts.c.attempts)
                         .where(login_attempts.c.key == key, login_attempts.c.window_ends_at > now)).scalar()
    return int(found or 0)


