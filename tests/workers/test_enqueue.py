"""A duplicate enqueue is harmless: one job per id, however many sweeps see the same work."""

from __future__ import annotations

import asyncio

from arq.connections import RedisSettings, create_pool
from sqlalchemy import Engine

from workers.constants import QUEUE_SUFFIX
from workers.jobs import enqueue
from workers.plan import Backlog, plan

from .fleet import Fleet, wait_until
from .workload import outcome, pings, publish_order, unapplied


async def enqueue_twice(redis_url: str, queue: str) -> tuple[int, int, int]:
    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        jobs = plan(Backlog(frozenset({0, 1, 2}), timers_due=1, outbox_due=1, schedules_due=True), queue, 4, 500)
        first = await enqueue(redis, queue + QUEUE_SUFFIX, jobs)
        second = await enqueue(redis, queue + QUEUE_SUFFIX, jobs + jobs)
        return first, second, int(await redis.zcard(queue + QUEUE_SUFFIX))
    finally:
        await redis.aclose()


def test_the_same_ids_enqueued_again_add_nothing(redis_url: str, queue: str) -> None:
    first, second, queued = asyncio.run(enqueue_twice(redis_url, queue))
    assert (first, second, queued) == (6, 0, 6)


def test_duplicate_jobs_in_the_queue_apply_nothing_twice(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    """Jobs for every partition, enqueued by hand before the workers start, beside the ones the
    sweepers enqueue: every event is still applied once."""
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(20, 10))
    assert asyncio.run(enqueue_twice(fleet.redis_url, fleet.queue))[:2] == (6, 0)
    fleet.start(partitions=4)
    fleet.start(partitions=4)
    wait_until(lambda: unapplied(db) == 0, 60, "every event applied")
    result = outcome(db)
    assert (result.seen, result.out_of_order, result.outbox_rows) == ([10] * 20, 0, 200)
