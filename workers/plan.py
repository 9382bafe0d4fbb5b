"""Pure: what the sweeper saw in PostgreSQL -> the jobs to enqueue, each with a fixed id.

The id is the uniqueness: arq's `enqueue_job(_job_id=...)` does nothing while a job with that
id is queued or running, so the sweeper can enqueue everything it sees every second, from any
number of workers, and each partition or lane still has at most one job at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .constants import EVENTS, OUTBOX, SCHEDULES, TIMERS


@dataclass(frozen=True)
class Backlog:
    """Work waiting in PostgreSQL, as one sweep saw it."""

    partitions: frozenset[int]  # partitions with unapplied events
    timers_due: int  # due timers of live journeys (counted up to a cap)
    outbox_due: int  # outbox rows due to be sent (counted up to a cap)
    schedules_due: bool  # a schedule tick is due or unfinished


@dataclass(frozen=True)
class Enqueue:
    function: str  # the job function's name
    args: tuple[int, ...]
    job_id: str


def job_id(queue: str, kind: str, lane: str = "") -> str:
    return f"{queue}:{kind}:{lane}" if lane else f"{queue}:{kind}"


def lanes_for(due: int, batch: int, lanes: int) -> int:
    """How many lanes to wake for `due` rows: one per batch, at most `lanes`."""
    return min(lanes, math.ceil(due / batch)) if due > 0 else 0


def plan(backlog: Backlog, queue: str, partitions: int, batch: int) -> list[Enqueue]:
    """The jobs for a backlog. Partitions outside 0..partitions-1 are a caller's bug."""
    if any(not 0 <= k < partitions for k in backlog.partitions):
        raise ValueError(f"a partition outside 0..{partitions - 1}: {sorted(backlog.partitions)}")
    jobs = [Enqueue("process_partition", (k, partitions), job_id(queue, EVENTS, f"{k}/{partitions}"))
            for k in sorted(backlog.partitions)]
    jobs += [Enqueue("fire_timers", (i,), job_id(queue, TIMERS, str(i)))
             for i in range(lanes_for(backlog.timers_due, batch, partitions))]
    jobs += [Enqueue("dispatch_outbox", (i,), job_id(queue, OUTBOX, str(i)))
             for i in range(lanes_for(backlog.outbox_due, batch, partitions))]
    if backlog.schedules_due:
        jobs.append(Enqueue("run_schedules", (), job_id(queue, SCHEDULES)))
    return jobs
