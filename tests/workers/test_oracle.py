"""The order journey of these tests does notice a ping applied out of order, so the tests that
rely on it can fail."""

from __future__ import annotations

from pathlib import Path

from storage import connect, migrate

from .workload import outcome, pings, publish_order


def test_a_ping_applied_out_of_order_tags_the_user(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'oracle.db'}")
    migrate(db)
    runtime = publish_order(db)
    first, second = pings(1, 2)[1:]  # after the identify: n=1 and n=2
    runtime.accept(pings(1, 0))  # the identify alone
    runtime.accept([second])
    runtime.process_events()
    runtime.accept([first])
    runtime.process_events()
    assert outcome(db).out_of_order == 1
    db.dispose()


def test_pings_applied_in_order_leave_no_tag(tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'oracle.db'}")
    migrate(db)
    runtime = publish_order(db)
    runtime.accept(pings(3, 4))
    runtime.process_events()
    result = outcome(db)
    assert (result.out_of_order, result.seen, result.outbox_rows) == (0, [4, 4, 4], 12)
    db.dispose()
