"""Login attempts counted in the database, on both backends: every concurrent attempt gets a
count of its own, a window that ended starts again, a success can clear or refund, and rows of
ended windows go away a small batch at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from storage import login_attempts
from storage.database import writer
from storage.login_attempts import login_attempts as table

from .racing import race

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def count(db: Engine, key: str, now: datetime = NOW) -> login_attempts.Count:
    with writer(db).begin() as conn:
        return login_attempts.count(conn, key, WINDOW, now)


def keys(db: Engine) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(select(table.c.key)).scalars())


def test_attempts_are_counted_within_a_window_and_start_again_after_it(db: Engine) -> None:
    assert count(db, "source:10.0.0.1") == login_attempts.Count(1, NOW + WINDOW)
    later = NOW + timedelta(minutes=14)
    assert count(db, "source:10.0.0.1", later) == login_attempts.Count(2, NOW + WINDOW)  # the window stays put
    assert count(db, "source:10.0.0.2", later).attempts == 1  # keys count apart
    assert count(db, "source:10.0.0.1", NOW + WINDOW) == login_attempts.Count(1, NOW + 2 * WINDOW)
    with db.connect() as conn:
        assert login_attempts.attempts(conn, "source:10.0.0.1", NOW + WINDOW) == 1
        assert login_attempts.attempts(conn, "source:10.0.0.2", later) == 1
        assert login_attempts.attempts(conn, "source:10.0.0.2", later + WINDOW) == 0  # its window ended
        assert login_attempts.attempts(conn, "never:seen", NOW) == 0


def test_concurrent_attempts_each_get_a_count_of_their_own(db: Engine) -> None:
    threads = 16
    seen: list[int] = []
    lock = threading.Lock()

    def attempt(_: int) -> None:
        found = count(db, "strangers|account:admin").attempts
        with lock:
            seen.append(found)

    race(threads, attempt)
    assert sorted(seen) == list(range(1, threads + 1))  # none lost, none shared


def test_a_success_forgets_or_refunds_only_its_own_window(db: Engine) -> None:
    first = count(db, "source:10.0.0.1")
    count(db, "source:10.0.0.1")
    count(db, "pair")
    with writer(db).begin() as conn:
        login_attempts.refund(conn, "source:10.0.0.1", first.window_ends_at)
        login_attempts.forget(conn, "pair")
        assert login_attempts.attempts(conn, "source:10.0.0.1", NOW) == 1
        assert login_attempts.attempts(conn, "pair", NOW) == 0
        login_attempts.refund(conn, "source:10.0.0.1", first.window_ends_at)
        login_attempts.refund(conn, "source:10.0.0.1", first.window_ends_at)
        assert login_attempts.attempts(conn, "source:10.0.0.1", NOW) == 0  # never below nothing
    restarted = NOW + WINDOW
    count(db, "source:10.0.0.1", restarted)
    with writer(db).begin() as conn:
        login_attempts.refund(conn, "source:10.0.0.1", first.window_ends_at)  # that window is gone
        assert login_attempts.attempts(conn, "source:10.0.0.1", restarted) == 1


def test_rows_of_ended_windows_are_deleted_a_batch_at_a_time(db: Engine) -> None:
    for n in range(5):
        count(db, f"old:{n}")
    count(db, "recent", NOW + timedelta(minutes=10))
    after = NOW + WINDOW  # the old windows end exactly now; the recent one has 10 minutes left
    with writer(db).begin() as conn:
        assert login_attempts.delete_ended(conn, after, limit=3) == 3
    with writer(db).begin() as conn:
        assert login_attempts.delete_ended(conn, after, limit=3) == 2
        assert login_attempts.delete_ended(conn, after, limit=3) == 0
    assert keys(db) == {"recent"}
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1
