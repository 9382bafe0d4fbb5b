"""Signatures remembered in the database: once accepted, refused by every process on it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from storage import connect, signature_replays
from storage.database import writer
from storage.signature_replays import SWEEP_ROWS, seen_signatures

from .racing import race

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


def use(db: Engine, signature: str, expires_at: datetime = LATER, now: datetime = NOW) -> bool:
    with writer(db).begin() as conn:
        return signature_replays.first_use(conn, signature, expires_at, now)


def remembered(db: Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.scalars(select(seen_signatures.c.signature)))


def test_a_signature_is_accepted_once_and_others_are_not_affected(db: Engine) -> None:
    assert use(db, "a" * 64)
    assert not use(db, "a" * 64)
    assert use(db, "b" * 64)
    assert remembered(db) == {"a" * 64, "b" * 64}


def test_another_engine_on_the_same_database_refuses_what_one_accepted(db: Engine) -> None:
    """A second server process has its own engine and pool: only the database is shared."""
    other = connect(db.url.render_as_string(hide_password=False))
    try:
        assert use(db, "c" * 64)
        assert not use(other, "c" * 64)
    finally:
        other.dispose()


def test_of_concurrent_uses_of_one_signature_exactly_one_is_first(db: Engine) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def work(_: int) -> None:
        first = use(db, "d" * 64)
        with lock:
            results.append(first)

    race(4, work)
    assert sorted(results) == [False, False, False, True]


def test_each_insert_deletes_a_few_expired_rows_oldest_first_and_keeps_live_ones(db: Engine) -> None:
    expired = [f"old{n:03}" for n in range(SWEEP_ROWS + 3)]
    for n, signature in enumerate(expired):  # each already past at NOW, the first the oldest
        assert use(db, signature, expires_at=NOW - timedelta(seconds=len(expired) - n), now=NOW - timedelta(hours=1))
    assert use(db, "live", expires_at=LATER, now=NOW - timedelta(hours=1))
    assert remembered(db) == {*expired, "live"}
    assert use(db, "new", now=NOW)  # deletes SWEEP_ROWS of the expired, the oldest
    assert remembered(db) == {*expired[SWEEP_ROWS:], "live", "new"}
    assert use(db, "newer", now=NOW)
    assert remembered(db) == {"live", "new", "newer"}
    with db.connect() as conn:
        assert signature_replays.count(conn) == 3


def test_a_row_is_refused_until_it_expires_then_it_is_swept(db: Engine) -> None:
    assert use(db, "e" * 64, expires_at=NOW + timedelta(seconds=1), now=NOW)
    assert not use(db, "e" * 64, now=NOW)
    assert use(db, "f" * 64, now=NOW + timedelta(seconds=1))  # the sweep takes e...
    assert "e" * 64 not in remembered(db)
