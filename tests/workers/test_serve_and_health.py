"""`journeyflow serve --redis` beside a worker: the server only stores events, the worker applies
them; /readyz and /metrics report the queue and the live workers. And a worker refuses to join
a fleet whose partition count differs."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import httpx
import pytest
from sqlalchemy import Engine

from workers import health

from ..api.conftest import run_serve
from .fleet import Fleet, script, wait_until
from .workload import ORDER, outbox_statuses, unapplied


def metric(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_serve_with_redis_leaves_the_work_to_workers_and_reports_them(fleet: Fleet, pg: tuple[str, Engine],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url, db = pg
    monkeypatch.setenv("JOURNEYFLOW_QUEUE", fleet.queue)  # the server reports the test's queue
    served = run_serve(url, "--redis", fleet.redis_url)
    try:
        assert any("journeyflow worker" in line for line in served.output)
        admin = {"Authorization": f"Bearer {served.admin_key}"}
        assert httpx.post(f"{served.url}/v1/journeys", json={"source": ORDER, "slug": "order"},
                          headers=admin).status_code == 201
        assert httpx.post(f"{served.url}/v1/journeys/order/publish", headers=admin).status_code == 200
        batch = [{"type": "identify", "userId": "u1", "traits": {"phone": "+8613800000001"}, "messageId": "i1"}]
        batch += [{"type": "track", "event": "ping", "userId": "u1", "properties": {"n": n}, "messageId": f"p{n}",
                   "timestamp": f"2026-01-01T00:00:{n:02d}Z"} for n in range(1, 6)]
        sent = httpx.post(f"{served.url}/v1/batch", json={"batch": batch}, auth=(served.write_key, ""))
        assert sent.status_code == 200
        ready = httpx.get(f"{served.url}/readyz").json()
        assert (ready["redis"], ready["workers"], unapplied(db)) == ("ok", 0, 6)  # stored, not applied

        fleet.start(partitions=4)
        wait_until(lambda: unapplied(db) == 0, 60, "the worker applying the events")
        wait_until(lambda: outbox_statuses(db) == {"sent": 5}, 60, "the worker sending the messages")
        assert httpx.get(f"{served.url}/readyz").json()["workers"] == 1
        text = httpx.get(f"{served.url}/metrics").text
        assert (metric(text, "journeyflow_redis_up"), metric(text, "journeyflow_workers")) == (1, 1)
        assert metric(text, "journeyflow_queue_jobs") >= 0
    finally:
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
        if served.process.stdout is not None:
            served.process.stdout.close()


def test_an_unreachable_redis_is_reported_not_fatal() -> None:
    found = asyncio.run(health.read("redis://127.0.0.1:1/0", "nowhere"))
    assert (found.reachable, found.workers) == (False, 0)
    assert "journeyflow_redis_up 0" in health.exposition(found)


def test_a_worker_with_another_partition_count_refuses_to_start(fleet: Fleet) -> None:
    fleet.start(partitions=4)
    wait_until(lambda: asyncio.run(health.read(fleet.redis_url, fleet.queue)).workers == 1, 30, "the first worker up")
    other = subprocess.run([script(), "worker", "--redis", fleet.redis_url, "--database", fleet.database_url,
                            "--queue", fleet.queue, "--partitions", "8"], capture_output=True, text=True, timeout=60)
    assert other.returncode == 1
    assert "every worker of a queue must have the same --partitions" in other.stderr
