"""What one worker process holds while it runs: the database, a pool of runtimes, a thread pool
for the engine's blocking SQL, the dispatcher, and the flag that asks jobs to stop.

The engine's SQL blocks, so it runs on threads of our own (one per concurrent job), leaving
arq's event loop free to poll, heartbeat and run cron. A `Runtime` caches journeys and is not
made for two threads at once: each thread takes one from the pool and gives it back.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Engine, create_engine, select

from actions.dispatcher import Dispatcher
from actions.settings import Settings as ActionSettings
from engine.clock import SystemClock
from engine.durable.backend import make_matcher
from engine.runtime import Runtime
from engine.unit_of_work import ConcurrentUpdate
from storage import migrate
from storage.tables import journeys

from . import backlog
from .config import WorkerConfig
from .constants import CONFLICT_RETRIES
from .plan import Backlog

T = TypeVar("T")
APPLICATION_NAME = "journeyflow-worker-{pid}"  # in pg_stat_activity: which worker holds a connection


def _journeys_seen(db: Engine) -> tuple[tuple[Any, ...], ...]:
    """What `Runtime.reload` depends on: which journeys exist, their status and live version.
    Read before each job (one query of a small table), so a journey published or paused through
    any API server reaches every worker by its next job, with no clock involved."""
    with db.connect() as conn:
        rows = conn.execute(select(journeys.c.id, journeys.c.status, journeys.c.live_version_id)
                            .order_by(journeys.c.id)).all()
    return tuple(tuple(r) for r in rows)


class Drained(NamedTuple):
    total: int  # events, timers or rows done in all
    dry: bool  # the last batch found nothing (rather than the budget or a stop ending the round)


class _Slot:
    """One runtime and the journeys it last loaded."""

    def __init__(self, db: Engine, rules_backend: str, default_zone: str = "UTC") -> None:
        self.seen = _journeys_seen(db)
        self.runtime = Runtime(db, SystemClock(), matcher=make_matcher(rules_backend), default_zone=default_zone)

    def fresh(self) -> Runtime:
        seen = _journeys_seen(self.runtime.db)
        if seen != self.seen:
            self.seen = seen
            self.runtime.reload()
        return self.runtime


class WorkerState:
    def __init__(self, config: WorkerConfig, actions: ActionSettings) -> None:
        self.config, self.actions = config, actions
        self.clock = SystemClock()
        # One connection per job thread, one for the sweeper and the dispatcher's claims, spare.
        self.db = create_engine(config.database_url, pool_size=config.concurrency + 2,
                                max_overflow=config.concurrency, pool_pre_ping=True,
                                connect_args={"application_name": APPLICATION_NAME.format(pid=os.getpid())})
        self.executor = ThreadPoolExecutor(max_workers=config.concurrency + 1, thread_name_prefix="journeyflow-db")
        self.stopping = threading.Event()  # set on SIGTERM: jobs finish their batch and return
        self._slots: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._made: list[_Slot] = []  # every slot ever made, to close their rules backends at the end
        self._dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        await self.run_blocking(migrate, self.db)  # safe with several workers starting at once
        self._dispatcher = Dispatcher(self.db, self.actions, self.clock)

    async def close(self) -> None:
        if self._dispatcher is not None:
            await self._dispatcher.aclose()
        self.executor.shutdown(wait=True)
        for slot in self._made:
            slot.runtime.close()
        self.db.dispose()

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("WorkerState.start() was not awaited")
        return self._dispatcher

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def drain(self, work: Callable[[Runtime], int]) -> int:
        """Run `work` batch after batch on a runtime of the pool until it does nothing, the job's
        time budget is spent or the worker is stopping; how much it did in all."""
        return (await self.drain_until(work, time.monotonic() + self.config.budget_seconds)).total

    async def drain_until(self, work: Callable[[Runtime], int], deadline: float, batch: int | None = None
                          ) -> Drained:
        """`drain` up to a deadline of the caller's, saying whether it ended on a batch that found
        nothing (a push needs to know: push.py). With `batch`, a batch that did fewer than that
        ends it too: the work had caught up with what was there, and a job that went on taking
        the trickle that keeps arriving would hold its slot to the deadline while other jobs
        wait for one (pushes and the sweep bring it back at once)."""
        return await self.run_blocking(self._drain, work, deadline, batch)

    @contextmanager
    def _runtime(self) -> Iterator[Runtime]:
        """A runtime of the pool (made when none is free), up to date with the journeys."""
        try:
            slot = self._slots.get_nowait()
        except queue.Empty:
            slot = _Slot(self.db, self.config.rules_backend, self.config.default_zone)
            self._made.append(slot)
        try:
            yield slot.fresh()
        finally:
            self._slots.put(slot)

    def _drain(self, work: Callable[[Runtime], int], deadline: float, batch: int | None = None) -> Drained:
        with self._runtime() as runtime:
            total = conflicts = 0
            while not self.stopping.is_set():
                try:
                    done = work(runtime)
                except ConcurrentUpdate:  # rolled back whole: another worker moved a run first
                    conflicts += 1
                    if conflicts > CONFLICT_RETRIES:
                        raise
                    continue
                conflicts = 0
                total += done
                if done == 0:
                    return Drained(total, True)
                if (batch is not None and done < batch) or time.monotonic() >= deadline:
                    break
            return Drained(total, False)

    def backlog(self) -> Backlog:
        """What is waiting in PostgreSQL, for the sweeper (blocking: run it on a thread)."""
        cap = self.config.partitions * self.config.batch
        now = self.clock.now()
        with self.db.connect() as conn:
            partitions = backlog.pending_partitions(conn, self.config.partitions)
            timers_due = backlog.due_timers(conn, now, cap)
            outbox_due = backlog.due_outbox(conn, now, cap)
        with self._runtime() as runtime:
            upcoming = runtime.next_schedule_due()
        return Backlog(partitions, timers_due, outbox_due, upcoming is not None and upcoming <= now)
