"""arq's WorkerSettings for one worker's config.

A dict rather than a class, because its values come from the command line: the queue name,
the Redis URL, the concurrency. `arq.worker.Worker(**worker_settings(config, state))` runs it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings

from . import health
from .config import WorkerConfig
from .constants import POLL_SECONDS, SWEEP
from .jobs import JOBS, STATE, sweep
from .state import WorkerState

SWEEP_TIMEOUT_SECONDS = 10.0
HEALTH_LINE_SECONDS = 10  # arq's own health line (`arq --check`); our heartbeats are per worker


def worker_settings(config: WorkerConfig, state: WorkerState) -> dict[str, Any]:
    beat_key = health.worker_key(config.queue)

    async def startup(ctx: dict[Any, Any]) -> None:
        redis = ctx["redis"]
        await health.claim_layout(redis, config)  # refuse to start beside another layout
        ctx["beat"] = asyncio.create_task(health.beat(redis, config, beat_key, time.time()))

    async def shutdown(ctx: dict[Any, Any]) -> None:
        if "beat" in ctx:
            await health.stop_beating(ctx["redis"], ctx["beat"], beat_key)

    return {
        # keep_result=0: a finished job leaves no result key, so its id can be enqueued again at
        # once (arq refuses an id while its result is kept).
        "functions": [func(job, name=job.__name__, keep_result=0) for job in JOBS],
        # The cron job's name carries the queue, as its ids do (<queue>:sweep:<unix ms>): each
        # worker enqueues the same id for the same second, so one sweep runs per tick in all.
        "cron_jobs": [cron(sweep, name=f"{config.queue}:{SWEEP}", second=set(range(0, 60, config.sweep_seconds)),
                           keep_result=0,
                           timeout=min(SWEEP_TIMEOUT_SECONDS, config.job_timeout), run_at_startup=True)],
        "redis_settings": RedisSettings.from_dsn(config.redis_url),
        "queue_name": config.queue_key,
        "health_check_key": config.health_key,
        "health_check_interval": HEALTH_LINE_SECONDS,
        "max_jobs": config.concurrency,
        # A job killed with its worker is run again this + 10 s later, when arq's in-progress
        # key expires: the bound on how long a SIGKILL delays its partition or lane.
        "job_timeout": config.job_timeout,
        "keep_result": 0,
        "poll_delay": POLL_SECONDS,
        "log_results": False,
        "ctx": {STATE: state},
        "on_startup": startup,
        "on_shutdown": shutdown,
    }
