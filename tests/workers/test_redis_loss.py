"""Redis forgets everything mid-run (FLUSHALL on a Redis of the test's own, so that parallel runs
sharing the main one are not wiped): nothing is lost, since the sweeper re-reads PostgreSQL."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import cast

import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from .conftest import unreachable
from .fleet import Fleet, wait_until
from .workload import outbox_statuses, outcome, pings, publish_order, unapplied

USERS, PINGS = 50, 60


@pytest.fixture
def own_redis() -> Iterator[str]:
    """A redis-server of this test's own on a free port, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        unreachable("redis-server is not installed (Debian: apt-get install redis-server)")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except (RedisError, OSError):
            return False

    try:
        wait_until(answers, 10, "the test's redis-server answers")
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def test_flushall_mid_run_loses_no_event_and_no_message(fleet: Fleet, pg: tuple[str, Engine], own_redis: str) -> None:
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(USERS, PINGS // 2))
    for _ in range(2):
        fleet.start("--concurrency", "3", batch=20, redis_url=own_redis)
    total = USERS + USERS * (PINGS // 2)
    wait_until(lambda: unapplied(db) < total - 200, 60, "the workers under way")

    redis = Redis.from_url(own_redis)
    try:
        queued_before = cast(int, redis.zcard(f"{fleet.queue}:queue"))
        left_before = unapplied(db) + outbox_statuses(db).get("pending", 0)
        redis.flushall()
    finally:
        redis.close()
    assert queued_before > 0 and left_before > 0, "the run was over before the flush: raise PINGS"

    runtime.accept(pings(USERS, PINGS // 2, start=PINGS // 2 + 1))
    wait_until(lambda: unapplied(db) == 0, 120, "every event applied")
    wait_until(lambda: outbox_statuses(db) == {"sent": USERS * PINGS}, 120, "every message sent")
    result = outcome(db)
    assert (result.seen, result.out_of_order) == ([PINGS] * USERS, 0)
    assert result.outbox_rows == result.distinct_keys == USERS * PINGS
