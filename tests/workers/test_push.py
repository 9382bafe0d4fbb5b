"""Pushes: events committed wake their partition's job at once, not at the next sweep.

The workers here sweep once a minute (`--sweep-seconds 60`, at second 0 and at startup), so
events applied within a few seconds of being stored, round after round, were pushed. Each test
that needs a worker waits for its startup sweep to pass before storing anything.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from arq.connections import ArqRedis
from redis import Redis
from sqlalchemy import Engine, event

from actions.settings import load_settings
from workers import health
from workers.config import WorkerConfig
from workers.constants import POKE_SUFFIX, QUEUE_SUFFIX, SEEN_SUFFIX
from workers.jobs import STATE, process_partition
from workers.plan import job_id
from workers.push import Pusher, partitions_of
from workers.state import WorkerState

from ..api.conftest import run_serve
from .fleet import Fleet, wait_until
from .workload import ORDER, outcome, pings, publish_order, unapplied

SLOW_SWEEP = ("--sweep-seconds", "60")
PUSHED_WITHIN = 10.0  # seconds; the sweep would take up to 60


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def pusher(redis_url: str, queue: str) -> Iterator[Pusher]:
    started = Pusher(redis_url, queue)
    started.start()
    yield started
    started.close()


def queued(redis: Redis, queue: str) -> set[str]:
    return {member.decode() for member in redis.zrange(queue + QUEUE_SUFFIX, 0, -1)}


def test_the_layout_value_names_the_partition_count() -> None:
    assert [partitions_of(v) for v in (b"partitions=16", "partitions=1", None, b"partitions=0", b"parts=4",
                                       b"partitions=x")] == [16, 1, None, None, None, None]


def test_a_push_enqueues_the_job_of_each_partition_once(redis: Redis, queue: str, pusher: Pusher) -> None:
    redis.set(queue + ":layout", "partitions=4")
    pusher.push({1, 5, 2})  # 1 and 5 share partition 1 of 4
    wait_until(lambda: pusher.pushed == 2, 10, "two jobs pushed")
    ids = {job_id(queue, "events", "1/4"), job_id(queue, "events", "2/4")}
    assert queued(redis, queue) == ids
    assert {int(redis.get(i + POKE_SUFFIX) or 0) for i in ids} == {1}


def test_without_a_live_fleet_a_push_enqueues_nothing(redis: Redis, queue: str, pusher: Pusher) -> None:
    pusher.push({1, 2, 3})
    time.sleep(0.3)  # what the push would have done by now: nothing to wait for instead
    assert (queued(redis, queue), pusher.pushed, pusher.owed()) == (set(), 0, 0)


def test_a_refused_push_is_settled_by_the_job_seeing_it_or_by_its_end(redis: Redis, queue: str,
                                                                       pusher: Pusher) -> None:
    """A job already queued or running refuses the push; the pusher tries again until the job
    says it looked after the push (`seen`), or until the job has ended and the enqueue takes."""
    redis.set(queue + ":layout", "partitions=2")
    one, zero = job_id(queue, "events", "1/2"), job_id(queue, "events", "0/2")
    asyncio.run(_enqueue_by_hand(pusher.redis_url, queue, [(one, 1), (zero, 0)]))
    pusher.push({1, 2})
    wait_until(lambda: pusher.owed() == 2, 10, "both pushes refused")
    redis.set(one + SEEN_SUFFIX, 1)  # partition 1's job looked after the poke
    wait_until(lambda: pusher.owed() == 1, 10, "partition 1's push settled by what its job saw")
    assert pusher.pushed == 0
    redis.delete("arq:job:" + zero)  # partition 0's job ended without seeing the poke
    redis.zrem(queue + QUEUE_SUFFIX, zero)
    wait_until(lambda: pusher.owed() == 0, 10, "partition 0's push enqueued once its job ended")
    assert (pusher.pushed, queued(redis, queue)) == (1, {zero, one})


async def _enqueue_by_hand(redis_url: str, queue: str, jobs: list[tuple[str, int]]) -> None:
    from arq.connections import RedisSettings, create_pool

    redis = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        for id_, index in jobs:
            assert await redis.enqueue_job("process_partition", index, 2, _job_id=id_,
                                           _queue_name=queue + QUEUE_SUFFIX) is not None
    finally:
        await redis.aclose()


def _worker_idle(fleet: Fleet, workers: int = 1) -> None:
    """Wait until the workers are up and their startup sweep has found nothing to do."""
    wait_until(lambda: asyncio.run(health.read(fleet.redis_url, fleet.queue)).workers == workers, 60,
               "the workers up")
    redis = Redis.from_url(fleet.redis_url)
    try:
        wait_until(lambda: not redis.zcard(fleet.queue + QUEUE_SUFFIX), 30, "the startup sweep done")
    finally:
        redis.close()
    time.sleep(0.5)


def test_events_stored_between_sweeps_are_applied_at_once(fleet: Fleet, pg: tuple[str, Engine],
                                                          pusher: Pusher) -> None:
    _, db = pg
    runtime = publish_order(db)
    runtime.on_accepted = pusher.push
    fleet.start(*SLOW_SWEEP, partitions=4)
    _worker_idle(fleet)
    for round_ in range(3):  # three rounds a second apart: no sweep at second 0 explains them all
        runtime.accept(pings(12, 2, start=1 + 2 * round_, prefix=f"r{round_}"))
        wait_until(lambda: unapplied(db) == 0, PUSHED_WITHIN, f"round {round_} applied after a push")
        time.sleep(1)
    assert outcome(db).out_of_order == 0


def test_a_stream_of_small_commits_loses_no_push(fleet: Fleet, pg: tuple[str, Engine], pusher: Pusher) -> None:
    """Commits every few milliseconds keep landing while a job is finishing: the window where a
    push is refused by a job about to end. Every event must still be applied without a sweep."""
    _, db = pg
    runtime = publish_order(db)
    runtime.on_accepted = pusher.push
    fleet.start(*SLOW_SWEEP, "--concurrency", "4", partitions=4)
    _worker_idle(fleet)
    users = 8
    runtime.accept(pings(users, 1))
    for n in range(2, 150):
        runtime.accept(pings(users, 1, start=n, prefix=f"s{n}")[:users])
        time.sleep(0.005)
    wait_until(lambda: unapplied(db) == 0, PUSHED_WITHIN, "the last commits applied after their push")
    result = outcome(db)
    assert (result.seen, result.out_of_order) == ([149] * users, 0)


def test_serve_with_redis_pushes_what_it_stores(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    url, db = pg
    fleet.start(*SLOW_SWEEP, partitions=4)
    _worker_idle(fleet)
    served = run_serve(url, "--redis", fleet.redis_url, "--queue", fleet.queue)
    try:
        admin = {"Authorization": f"Bearer {served.admin_key}"}
        assert httpx.post(f"{served.url}/v1/journeys", json={"source": ORDER, "slug": "order"},
                          headers=admin).status_code == 201
        assert httpx.post(f"{served.url}/v1/journeys/order/publish", headers=admin).status_code == 200
        for round_ in range(3):
            batch = [{"type": "track", "event": "ping", "userId": f"u{u}", "properties": {"n": round_ + 1},
                      "messageId": f"b{round_}-{u}", "timestamp": f"2026-01-01T00:00:{round_:02d}Z"}
                     for u in range(6)]
            sent = httpx.post(f"{served.url}/v1/batch", json={"batch": batch}, auth=(served.write_key, ""))
            assert sent.status_code == 200
            wait_until(lambda: unapplied(db) == 0, PUSHED_WITHIN, f"round {round_} applied after serve's push")
            time.sleep(1)
        assert outcome(db).seen == [3] * 6
    finally:
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
        if served.process.stdout is not None:
            served.process.stdout.close()


def test_a_job_records_the_poke_count_it_looked_after_not_the_one_it_ends_on(
        redis_url: str, queue: str, pg: tuple[str, Engine]) -> None:
    """The race itself, made to happen: events committed and poked while the job's batch that
    finds nothing is running (its query has run, its transaction has not ended). The job must
    not claim to have seen that poke: `seen` stays below it, so the refused push enqueues the
    job again once it has ended, and that job applies the late events."""
    url, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(3, 1))
    late = pings(3, 1, start=2, prefix="late")[:3]
    state = WorkerState(WorkerConfig(redis_url=redis_url, database_url=url, queue=queue, partitions=1),
                        load_settings(None, {}))
    id_ = job_id(queue, "events", "0/1")
    reads: list[str] = []

    def commit_during_the_dry_batch(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM events" in statement:
            reads.append(statement)
            if len(reads) == 2:  # the first batch took the first pings; this one finds nothing
                runtime.accept(late)
                Redis.from_url(redis_url).incr(id_ + POKE_SUFFIX)

    async def run_jobs(times: int) -> list[tuple[int, int | None]]:
        """The job run `times` times: what each applied, and `seen` after it (None: unset)."""
        await state.start()
        redis = ArqRedis.from_url(redis_url)
        try:
            done = []
            for _ in range(times):
                applied = await process_partition({"redis": redis, "job_id": id_, STATE: state}, 0, 1)
                seen = await redis.get(id_ + SEEN_SUFFIX)
                done.append((applied, None if seen is None else int(seen)))
            return done
        finally:
            await redis.aclose()
            await state.close()

    event.listen(state.db, "after_cursor_execute", commit_during_the_dry_batch)
    assert asyncio.run(run_jobs(4)) == [
        (6, None),  # 3 identifies and 3 pings, fewer than a batch: caught up, so it ends, seen unset
        (0, 0),  # found nothing, the late pings committed and poked meanwhile: it saw only poke 0
        (3, 0),  # so the refused push runs it again: the late pings
        (0, 1),  # and now it has looked after poke 1
    ]
    assert unapplied(db) == 0
