"""SIGTERM: the worker finishes the batch it is in, takes no new job, leaves nothing claimed in
Redis, and exits 0; another worker carries on at once."""

from __future__ import annotations

import asyncio
import signal

from sqlalchemy import Engine

from workers import health

from .fleet import Fleet, in_event_batch, wait_until
from .workload import outcome, pings, publish_order, unapplied

USERS, PINGS = 40, 150
# So long that a job left claimed by the stopped worker would hold its partition for five
# minutes: the second worker finishing within a minute shows that nothing was left claimed.
JOB_TIMEOUT = 300.0


def test_sigterm_finishes_the_batch_and_hands_the_rest_back(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(USERS, PINGS))
    first = fleet.start("--concurrency", "4", "--grace", "30", batch=20, job_timeout=JOB_TIMEOUT)
    wait_until(lambda: in_event_batch(db, first.pid), 60, "the worker inside an event batch")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=60) == 0
    log = first.text()
    assert "SIGTERM: finishing the batches in flight" in log
    assert "cancelled, will be run again" not in log  # every job ended on its own, within the grace
    left = unapplied(db)
    assert left > 0, "the work was over before SIGTERM: raise PINGS"
    assert asyncio.run(health.read(fleet.redis_url, fleet.queue)).workers == 0  # its heartbeat is gone

    fleet.start("--concurrency", "4", batch=200, job_timeout=JOB_TIMEOUT)
    wait_until(lambda: unapplied(db) == 0, 60, "the second worker applying the rest")
    result = outcome(db)
    assert (result.seen, result.out_of_order) == ([PINGS] * USERS, 0)
    assert result.outbox_rows == result.distinct_keys == USERS * PINGS
