"""Group commit: many concurrent requests, one transaction, each answered after it commits.

A durable 200 costs a commit, and a commit costs a disk sync: SQLite manages a few thousand
single-row transactions a second, fewer than uvicorn can answer. So requests do not commit on
their own. Each hands its messages to this queue and waits; one worker takes everything that
is waiting, stores it with `Runtime.accept` in one transaction, and only then wakes every
request of the group. While that transaction runs, the next group gathers, so the busier the
API, the larger each group and the cheaper each message.

The transactions run on one thread of their own, as the database calls block. One group is
committed at a time anyway, so one thread is enough, and handing it a group skips what
borrowing a thread from anyio's pool costs each time (a capacity limiter, a cancel scope).

If a group's transaction fails, its requests are retried one by one, so a request that breaks
the store fails alone and the others still get their 200.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from engine.messages import Message

from .problems import Unavailable

GATHER_TURNS = 8  # event-loop turns a group waits for requests already arriving (`IngestQueue._gather`)
Commit = Callable[[Sequence[Message]], int]  # stores messages durably; how many were new


@dataclass
class _Waiting:
    messages: Sequence[Message]
    done: asyncio.Future[int]


class IngestQueue:
    def __init__(self, commit: Commit, max_messages: int) -> None:
        self._commit = commit
        self._max = max_messages
        self._waiting: list[_Waiting] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._closing = False
        self.messages_accepted = 0  # new messages stored since start, for /metrics
        self.groups_committed = 0

    def start(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-group-commit")
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="ingest-group-commit")

    async def stop(self) -> None:
        """Refuse new work, finish what is waiting, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        if self._thread is not None:
            self._thread.shutdown(wait=True)

    async def submit(self, messages: Sequence[Message]) -> int:
        """Wait until `messages` are committed; how many were submitted. (Duplicates are
        dropped by message id inside the shared transaction, so "new" is known per group only.)"""
        if self._closing or self._worker is None or self._worker.done():
            raise Unavailable("the server is shutting down; retry against another instance")
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(messages, done))
        self._wakeup.set()
        return await done

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._gather()
                await self._commit_group(self._take())
            if self._closing:
                return

    async def _gather(self) -> None:
        """Let the event loop run a few turns before taking a group, so that requests whose
        bytes have already arrived join it. A request reaches `submit` two turns after its
        bytes are read (one turn parses HTTP and starts its task, the next runs the handler),
        and while a commit holds the interpreter the loop falls behind on sockets that are
        ready; without these turns a group took only what had been handled during the last
        commit, half of the concurrent requests. With them, under `benchmarks/ingest.py`'s 64
        connections, groups went from ~33 to ~58 requests and the commit's CPU per message from
        ~90 to ~65 us (`Runtime.accept` costs less per message in larger groups). The turns are
        counted, not timed: on an idle server each is a few microseconds, and a lone request
        waits no longer than that for its commit."""
        for _ in range(GATHER_TURNS):
            if sum(len(w.messages) for w in self._waiting) >= self._max:
                return
            await asyncio.sleep(0)

    def _take(self) -> list[_Waiting]:
        """The oldest requests whose messages fit in one group (at least one request)."""
        size, cut = 0, 0
        for waiting in self._waiting:
            size += len(waiting.messages)
            if cut and size > self._max:
                break
            cut += 1
        group, self._waiting = self._waiting[:cut], self._waiting[cut:]
        return group

    async def _commit_group(self, group: list[_Waiting]) -> None:
        messages = [m for w in group for m in w.messages]
        try:
            stored = await asyncio.get_running_loop().run_in_executor(self._thread, self._commit, messages)
        except Exception as error:
            if len(group) > 1:
                for waiting in group:
                    await self._commit_group([waiting])
                return
            _finish(group[0], error=error)
            return
        self.messages_accepted += stored
        self.groups_committed += 1
        for waiting in group:
            _finish(waiting, result=len(waiting.messages))


def _finish(waiting: _Waiting, result: int = 0, error: Exception | None = None) -> None:
    if waiting.done.done():  # the client went away; its messages are stored all the same
        return
    if error is not None:
        waiting.done.set_exception(Unavailable(f"the events could not be stored ({type(error).__name__}); "
                                               "retry: a resend with the same messageId is harmless"))
    else:
        waiting.done.set_result(result)
