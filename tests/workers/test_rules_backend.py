"""A worker told `--rules-backend durable` evaluates with durable-rules (a supervised child per
job runtime) and applies events exactly as the compiled backend would; a bad name is refused."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from engine.durable.supervisor import CHILD_SCRIPT
from workers.config import WorkerConfig
from workers.errors import ConfigInvalid

from ..processes import children_running
from .fleet import Fleet, wait_until
from .workload import outbox_statuses, outcome, pings, publish_order, unapplied

USERS, PINGS = 5, 6


def test_a_worker_on_the_durable_backend_applies_every_event_in_order(fleet: Fleet, pg: tuple[str, Engine]) -> None:
    pytest.importorskip("durable", reason="the durable extra: pip install -e '.[durable]'")
    _, db = pg
    runtime = publish_order(db)
    runtime.accept(pings(USERS, PINGS))
    worker = fleet.start("--rules-backend", "durable", "--concurrency", "2")
    wait_until(lambda: unapplied(db) == 0, 120, "every event applied")
    wait_until(lambda: outbox_statuses(db) == {"sent": USERS * PINGS}, 120, "every message sent")
    assert children_running(worker.pid, CHILD_SCRIPT), "no durable-rules child under the worker:\n" + worker.text()
    result = outcome(db)
    assert (result.seen, result.out_of_order) == ([PINGS] * USERS, 0)


def test_an_unknown_rules_backend_is_refused_at_start() -> None:
    with pytest.raises(ConfigInvalid, match="--rules-backend 'rete': one of compiled, durable"):
        WorkerConfig(redis_url="redis://127.0.0.1:6379/0", database_url="postgresql+psycopg://x/y",
                     rules_backend="rete")
