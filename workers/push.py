"""Waking the job of a partition as soon as its events are committed, instead of at the next sweep.

The sweeper reads PostgreSQL once a second, so on its own an event waits for the sweep, then for
a worker's poll, before anything looks at it: a second or more. Whoever stores events (the API
server with `--redis`, a benchmark's feeder) hands the pusher the profiles whose events it has
just committed; the pusher enqueues `process_partition` for each of their partitions at once.
The sweep stays: it is what finds work a push missed (Redis away, a pusher killed mid-way).

The race a push must close. arq refuses a job id while a job with that id is queued or running,
and a refused push is harmless while the job is queued (it has not read anything yet) but not
once it has found nothing and is about to end: events committed in that window would wait for
the sweep. So every push first raises a counter beside the job id (`<job id>:poke`), after its
commit; the job reads the counter before its first batch and, when it ends on a batch that
found nothing, writes the value it read to `<job id>:seen`. A refused push then knows: once
`seen` reaches its own count, a batch looked after its commit; until then it tries again every
`PUSH_RETRY_SECONDS`, and the enqueue succeeds as soon as the job has ended.

`Pusher.push` may be called from any thread and never blocks on Redis: the pushes gather on a
thread of the pusher's own, with its own event loop, and those that arrive while one is in
flight go together in the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from .constants import (
    EVENTS,
    HEARTBEAT_SECONDS,
    LAYOUT_SUFFIX,
    POKE_SUFFIX,
    PUSH_KEY_TTL_SECONDS,
    PUSH_RETRY_SECONDS,
    QUEUE_SUFFIX,
    SEEN_SUFFIX,
)
from .plan import job_id

log = logging.getLogger("journeyflow.push")
REDIS_TIMEOUT_SECONDS = 2.0
GIVE_UP_SECONDS = 120.0  # a job refused this long (its worker killed, its retry not yet due): leave it to the sweep


def partitions_of(layout: bytes | str | None) -> int | None:
    """The partition count in a fleet's layout value ("partitions=P"); None when there is none."""
    if layout is None:
        return None
    text = layout.decode() if isinstance(layout, bytes) else layout
    key, _, value = text.partition("=")
    return int(value) if key == "partitions" and value.isdigit() and int(value) > 0 else None


@dataclass
class _Owed:
    """A push that was refused: the job it wants, and the poke count the job must have seen."""

    index: int
    count: int
    poke: int
    since: float


class Pusher:
    """Enqueues the event job of each partition whose users just had events committed."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self.redis_url, self.queue = redis_url, queue
        self._lock = threading.Lock()
        self._profiles: set[int] = set()  # pushed and not yet taken by the pusher's loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="journeyflow-push", daemon=True)
        self._owed: dict[str, _Owed] = {}
        self._layout: tuple[int | None, float] = (None, 0.0)  # (partitions, when read)
        self.pushed = 0  # jobs enqueued by a push (they were not queued or running yet)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def push(self, profile_ids: Iterable[int]) -> None:
        """Wake the jobs of these profiles' partitions; returns at once (any thread)."""
        with self._lock:
            self._profiles.update(profile_ids)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def close(self) -> None:
        """Send what was pushed, then stop the thread."""
        self._closing = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        self._thread.join()

    def owed(self) -> int:
        """Pushes refused and not yet settled (see the module's docstring)."""
        return len(self._owed)

    # ------------------------------------------------------------------ the pusher's own thread

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        # Connected on first use, so a Redis that is away at start is a failed round, not a hang.
        redis = ArqRedis.from_url(self.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                  socket_connect_timeout=REDIS_TIMEOUT_SECONDS)
        self._ready.set()
        try:
            while True:
                if self._owed:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), PUSH_RETRY_SECONDS)
                else:
                    await self._wake.wait()
                self._wake.clear()
                with self._lock:
                    profiles, self._profiles = self._profiles, set()
                try:
                    if profiles:
                        await self._push(redis, profiles)
                    if self._owed:
                        await self._settle(redis)
                except RedisError as error:  # the sweep finds this work within a second
                    log.warning("push to Redis failed (%s); the sweep will find the events", error)
                    self._owed.clear()
                if self._closing and not self._profiles:
                    break
        finally:
            await redis.aclose()

    async def _partitions(self, redis: ArqRedis) -> int | None:
        """The fleet's partition count, read again once a heartbeat's time has passed."""
        count, read_at = self._layout
        if count is None or time.monotonic() - read_at > HEARTBEAT_SECONDS:
            count = partitions_of(await redis.get(self.queue + LAYOUT_SUFFIX))
            self._layout = (count, time.monotonic())
        return count

    async def _push(self, redis: ArqRedis, profiles: set[int]) -> None:
        count = await self._partitions(redis)
        if count is None:  # no live worker: there is nobody to wake (one that starts sweeps first)
            return
        lanes = sorted({profile % count for profile in profiles})
        ids = [job_id(self.queue, EVENTS, f"{k}/{count}") for k in lanes]
        async with redis.pipeline(transaction=False) as pipe:
            for id_ in ids:
                pipe.incr(id_ + POKE_SUFFIX)
                pipe.expire(id_ + POKE_SUFFIX, PUSH_KEY_TTL_SECONDS)
            pokes = (await pipe.execute())[::2]
        now = time.monotonic()
        for index, id_, poke in zip(lanes, ids, pokes, strict=True):
            self._owed[id_] = _Owed(index, count, int(poke), now)
        await self._settle(redis, check_seen=False)

    async def _settle(self, redis: ArqRedis, check_seen: bool = True) -> None:
        """Enqueue each owed job; drop those enqueued, seen past their poke, or owed too long."""
        ids = list(self._owed)
        if check_seen:
            seen = await redis.mget([id_ + SEEN_SUFFIX for id_ in ids])
            now = time.monotonic()
            for id_, value in zip(ids, seen, strict=True):
                owed = self._owed[id_]
                if (value is not None and int(value) >= owed.poke) or now - owed.since > GIVE_UP_SECONDS:
                    del self._owed[id_]
            ids = list(self._owed)
        made = await asyncio.gather(*(redis.enqueue_job(
            "process_partition", self._owed[id_].index, self._owed[id_].count, _job_id=id_,
            _queue_name=self.queue + QUEUE_SUFFIX) for id_ in ids))
        for id_, job in zip(ids, made, strict=True):
            if job is not None:
                self.pushed += 1
                del self._owed[id_]
