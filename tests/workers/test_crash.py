"""A worker killed with SIGKILL in the middle of an event batch: another worker takes its job
over once arq's in-progress key expires (job timeout + 10 s), and PostgreSQL, which rolled the
batch back, holds every event applied exactly once and every message once."""

from __future__ import annotations

import signal

from sqlalchemy import Engine

from .fleet import Fleet, in_event_batch, wait_until
from .workload import outbox_statuses, outcome, pings, publish_order, unapplied

USERS, PINGS = 40, 100
JOB_TIMEOUT = 4.0
TAKEOVER_SECONDS = JOB_TIMEOUT + 10  # arq's in-progress key outlives a job by 10 s


def test_sigkill_mid_batch_is_taken_over_and_nothing_is_lost_or_repeated(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(USERS, PINGS))
    victim = fleet.start("--concurrency", "2", batch=50, job_timeout=JOB_TIMEOUT)
    survivors = [fleet.start("--concurrency", "2", batch=50, job_timeout=JOB_TIMEOUT) for _ in range(2)]

    wait_until(lambda: in_event_batch(db, victim.pid), 60, "the victim inside an event batch")
    victim.process.send_signal(signal.SIGKILL)
    assert victim.process.wait(timeout=10) == -signal.SIGKILL
    assert unapplied(db) > 0, "the work was over before the kill: raise PINGS"

    wait_until(lambda: unapplied(db) == 0, TAKEOVER_SECONDS + 60, "every event applied after the kill")
    wait_until(lambda: outbox_statuses(db) == {"sent": USERS * PINGS}, 60, "every message sent")
    result = outcome(db)
    assert result.events == USERS + USERS * PINGS
    assert (result.seen, result.out_of_order) == ([PINGS] * USERS, 0)
    assert result.outbox_rows == result.distinct_keys == USERS * PINGS
    # The victim's job itself was run again by a survivor (arq counts a second try).
    assert any("process_partition" in line and "try=2" in line
               for worker in survivors for line in worker.text().splitlines())
