"""The arq job functions. Each carries a batch of work, never one user's step: a partition's
events, a lane of due timers, a lane of outbox rows, the due schedule ticks; and the sweeper
that enqueues them.

A job takes batch after batch (each its own transaction) until nothing is left, its time budget
is spent or the worker is stopping, then ends; the sweeper wakes it again while work remains.
Which rows a job takes is decided in PostgreSQL at that moment (an advisory lock per partition,
SKIP LOCKED for timers, a lease for outbox rows), never carried in the job: a job run twice, or
late, or after a Redis that lost everything, finds only what is still to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from arq.connections import ArqRedis

from .constants import OUTBOX, POKE_SUFFIX, PUSH_KEY_TTL_SECONDS, SEEN_SUFFIX
from .errors import LayoutMismatch
from .plan import Enqueue, job_id, plan
from .state import WorkerState

log = logging.getLogger("journeyflow.worker")
STATE = "journeyflow"  # the ctx key under which arq hands every job the WorkerState


def state_of(ctx: dict[Any, Any]) -> WorkerState:
    found = ctx[STATE]
    assert isinstance(found, WorkerState)
    return found


async def process_partition(ctx: dict[Any, Any], index: int, count: int) -> int:
    """Apply the events of partition `index` of `count`, in order per user; how many.

    Before its first batch it reads the partition's poke counter, and when it ends on a batch
    that found nothing it records that value in `<job id>:seen`: every push counted by then
    committed its events before that batch looked. A push counted later was refused while this
    job ran, and tries again once it has ended (push.py). The job does not go on for such a
    push itself: a job that kept going while pushes came would hold its worker's slot for as
    long as events flow, and a partition whose job waits for a slot would wait that long."""
    state = state_of(ctx)
    config = state.config
    if count != config.partitions:
        raise LayoutMismatch(f"a job for partition {index} of {count} reached a worker with {config.layout}")
    redis: ArqRedis = ctx["redis"]
    before = await redis.get(ctx["job_id"] + POKE_SUFFIX)
    drained = await state.drain_until(lambda runtime: runtime.process_events(config.batch, (index, count)),
                                      time.monotonic() + config.budget_seconds, config.batch)
    if drained.dry:  # else it caught up, or the budget is spent: a push or the sweep comes back
        await redis.set(ctx["job_id"] + SEEN_SUFFIX, before or b"0", ex=PUSH_KEY_TTL_SECONDS)
    if drained.total:  # what these events made due now is sent without waiting for the sweep
        await enqueue(redis, config.queue_key, [Enqueue("dispatch_outbox", (0,), job_id(config.queue, OUTBOX, "0"))])
    return drained.total


async def fire_timers(ctx: dict[Any, Any], lane: int) -> int:
    """Fire due timers; lanes run at once and take disjoint timers (SKIP LOCKED). How many."""
    state = state_of(ctx)
    batch = state.config.batch
    return (await state.drain_until(lambda runtime: runtime.fire_due_timers(batch),
                                    time.monotonic() + state.config.budget_seconds, batch)).total


async def run_schedules(ctx: dict[Any, Any]) -> int:
    """Run the schedule ticks that are due (each resumes from its cursor); entries made."""
    state = state_of(ctx)
    batch = state.config.batch
    return await state.drain(lambda runtime: runtime.run_due_schedules(batch))


async def dispatch_outbox(ctx: dict[Any, Any], lane: int) -> int:
    """Send due outbox rows, a leased chunk at a time; rows claimed."""
    state = state_of(ctx)
    deadline = time.monotonic() + state.config.budget_seconds
    total = 0
    while not state.stopping.is_set():
        report = await state.dispatcher.dispatch_once()  # a chunk of the actions settings' batch_size
        total += report.claimed
        # A chunk short of full: caught up; the slot goes back to the queue (see WorkerState.drain_until).
        if report.claimed < state.actions.dispatch.batch_size or time.monotonic() >= deadline:
            break
    return total


async def enqueue(redis: ArqRedis, queue_key: str, jobs: list[Enqueue]) -> int:
    """Enqueue each job under its id; how many were new (a job already queued or running with
    the same id is left alone: that is what makes a duplicate enqueue harmless)."""
    made = await asyncio.gather(*(redis.enqueue_job(job.function, *job.args, _job_id=job.job_id,
                                                    _queue_name=queue_key) for job in jobs))
    return sum(1 for job in made if job is not None)


async def sweep(ctx: dict[Any, Any]) -> int:
    """The cron job, once a second across the fleet: look at PostgreSQL, enqueue what waits."""
    state = state_of(ctx)
    redis: ArqRedis = ctx["redis"]
    backlog = await state.run_blocking(state.backlog)
    config = state.config
    return await enqueue(redis, config.queue_key, plan(backlog, config.queue, config.partitions, config.batch))


JOBS = (process_partition, fire_timers, run_schedules, dispatch_outbox)
