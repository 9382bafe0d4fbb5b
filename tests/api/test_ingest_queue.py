"""Group commit: requests that arrive while a transaction runs share the next one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from api.ingest_queue import IngestQueue
from api.problems import Unavailable
from engine.messages import Message, parse_message

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def message(i: int) -> Message:
    return parse_message({"type": "track", "userId": f"u{i}", "event": "e", "messageId": f"m{i}"}, NOW)


class Store:
    """A commit function that holds its first transaction open until told to finish."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.groups: list[list[str]] = []
        self.started = threading.Event()  # the first transaction is open
        self.release = threading.Event()
        self.fail_on = fail_on

    def commit(self, messages: Sequence[Message]) -> int:
        if not self.started.is_set():
            self.started.set()
            self.release.wait()
        ids = [m.message_id for m in messages]
        if self.fail_on in ids:
            raise RuntimeError("this one breaks the store")
        self.groups.append(ids)
        return len(ids)


async def _run(store: Store, count: int) -> list[int | BaseException]:
    queue = IngestQueue(store.commit, max_messages=100)
    queue.start()
    first = asyncio.ensure_future(queue.submit([message(0)]))
    while not store.started.is_set():  # the worker has taken the first request alone
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(queue.submit([message(i)])) for i in range(1, count)]
    await asyncio.sleep(0)
    store.release.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    await queue.stop()
    return results


def test_requests_waiting_during_a_commit_share_the_next_one() -> None:
    store = Store()
    results = asyncio.run(_run(store, 10))
    assert results == [1] * 10
    assert store.groups == [["m0"], [f"m{i}" for i in range(1, 10)]]


def test_a_failing_request_fails_alone() -> None:
    store = Store(fail_on="m4")
    results = asyncio.run(_run(store, 6))
    assert [r for i, r in enumerate(results) if i != 4] == [1] * 5
    assert isinstance(results[4], Unavailable)
    assert store.groups == [["m0"], ["m1"], ["m2"], ["m3"], ["m5"]]


def test_a_stopped_queue_refuses_work() -> None:
    async def scenario() -> None:
        queue = IngestQueue(Store().commit, max_messages=10)
        queue.start()
        await queue.stop()
        with pytest.raises(Unavailable):
            await queue.submit([message(1)])

    asyncio.run(scenario())


def test_a_group_holds_at_most_max_messages_but_always_one_request() -> None:
    async def scenario() -> tuple[list[int | BaseException], Store]:
        store = Store()
        queue = IngestQueue(store.commit, max_messages=100)
        queue.start()
        first = asyncio.ensure_future(queue.submit([message(0)]))
        while not store.started.is_set():
            await asyncio.sleep(0.001)
        sizes = [60, 30, 20, 150, 5]  # 60 + 30 fit; 20 would pass 100; 150 is alone and too big
        numbers = iter(range(1, 1 + sum(sizes)))
        rest = [asyncio.ensure_future(queue.submit([message(next(numbers)) for _ in range(size)])) for size in sizes]
        await asyncio.sleep(0)
        store.release.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        await queue.stop()
        return results, store

    results, store = asyncio.run(scenario())
    assert results == [1, 60, 30, 20, 150, 5]
    assert [len(group) for group in store.groups] == [1, 90, 20, 150, 5]
