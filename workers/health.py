"""Health in Redis: each worker's heartbeat (and the fleet's partition layout, kept alive by the
same beat), and what the API reports from them: queue depth, lag, live workers.

A heartbeat is a key with a TTL, one per worker (`<queue>:worker:<host>:<pid>`); a worker killed
with SIGKILL stops counting within `HEARTBEAT_TTL_SECONDS`, one stopped gracefully at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .config import WorkerConfig
from .constants import HEARTBEAT_SECONDS, HEARTBEAT_TTL_SECONDS, QUEUE_SUFFIX, WORKER_SUFFIX
from .errors import LayoutMismatch

log = logging.getLogger("journeyflow.worker")
LAG_PROBE = 50  # oldest runnable jobs looked at to find the oldest one no worker has started
REDIS_TIMEOUT_SECONDS = 1.0  # a health probe must answer quickly, Redis or not


def worker_key(queue: str) -> str:
    return f"{queue}{WORKER_SUFFIX}{socket.gethostname()}:{os.getpid()}"


async def claim_layout(redis: ArqRedis, config: WorkerConfig) -> None:
    """Set the fleet's partition layout if none is set, and keep it alive; raise LayoutMismatch
    when a live fleet uses another. The key expires when no worker of its layout beats."""
    await redis.set(config.layout_key, config.layout, nx=True, ex=int(HEARTBEAT_TTL_SECONDS))
    current = await redis.get(config.layout_key)
    found = current.decode() if current is not None else None
    if found is not None and found != config.layout:
        raise LayoutMismatch(f"this worker has {config.layout} but the workers on queue {config.queue!r} "
                             f"use {found}: every worker of a queue must have the same --partitions "
                             "(stop them all to change it)")
    await redis.expire(config.layout_key, int(HEARTBEAT_TTL_SECONDS))


async def beat(redis: ArqRedis, config: WorkerConfig, key: str, started: float) -> None:
    """Refresh this worker's heartbeat and the layout, until cancelled."""
    value = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": started,
                        "concurrency": config.concurrency, "partitions": config.partitions})
    while True:
        try:
            await redis.set(key, value, ex=int(HEARTBEAT_TTL_SECONDS))
            await claim_layout(redis, config)
        except LayoutMismatch as error:
            log.error("%s", error)
        except RedisError as error:  # Redis away for a moment: the jobs say so too; keep beating
            log.warning("heartbeat failed: %s", error)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def stop_beating(redis: ArqRedis, task: asyncio.Task[None], key: str) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(RedisError):
        await redis.delete(key)


@dataclass(frozen=True)
class QueueHealth:
    reachable: bool
    jobs: int = 0  # in the queue: waiting, deferred or running
    lag_seconds: float = 0.0  # how long the oldest job that may start and has not has waited
    workers: int = 0  # with a live heartbeat
    error: str | None = None


async def read(redis_url: str, queue: str) -> QueueHealth:
    """The queue's health, from a connection of its own (closed after)."""
    redis: Redis = Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                  socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
    try:
        return await _read(redis, queue)
    except (RedisError, OSError) as error:
        return QueueHealth(reachable=False, error=type(error).__name__)
    finally:
        await redis.aclose()


async def _read(redis: Redis, queue: str) -> QueueHealth:
    key = queue + QUEUE_SUFFIX
    now_ms = time.time() * 1000
    jobs = int(await redis.zcard(key))
    oldest = await redis.zrangebyscore(key, "-inf", now_ms, start=0, num=LAG_PROBE, withscores=True)
    lag = 0.0
    for job_id, score in oldest:
        if not await redis.exists(in_progress_key_prefix + job_id.decode()):
            lag = max(0.0, (now_ms - score) / 1000)
            break
    workers = 0
    async for _ in redis.scan_iter(match=f"{queue}{WORKER_SUFFIX}*", count=1000):
        workers += 1
    return QueueHealth(reachable=True, jobs=jobs, lag_seconds=lag, workers=workers)


def exposition(health: QueueHealth) -> list[str]:
    """Prometheus lines for /metrics."""
    return [
        "# HELP journeyflow_redis_up Whether the workers' Redis answered this scrape.",
        "# TYPE journeyflow_redis_up gauge",
        f"journeyflow_redis_up {int(health.reachable)}",
        "# HELP journeyflow_queue_jobs Jobs in the workers' queue (waiting, deferred or running).",
        "# TYPE journeyflow_queue_jobs gauge",
        f"journeyflow_queue_jobs {health.jobs}",
        "# HELP journeyflow_queue_lag_seconds How long the oldest job that may start has waited for a worker.",
        "# TYPE journeyflow_queue_lag_seconds gauge",
        f"journeyflow_queue_lag_seconds {health.lag_seconds}",
        "# HELP journeyflow_workers Workers with a live heartbeat.",
        "# TYPE journeyflow_workers gauge",
        f"journeyflow_workers {health.workers}",
    ]
