"""`journeyflow worker` processes for tests, and waits with a deadline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select, text

from engine.runtime import partition_lock_space

# The actions settings of every test worker: the log provider (the default) without a rate
# limit, 1 s request timeouts, and a 5 s lease, so rows of a killed dispatcher come back soon.
ACTIONS_ENV = {
    "JOURNEYFLOW_ACTIONS__SMS__RATE_PER_SECOND": "100000",
    "JOURNEYFLOW_ACTIONS__SMS__TIMEOUT_SECONDS": "1",
    "JOURNEYFLOW_ACTIONS__DISPATCH__LEASE_SECONDS": "5",
    "JOURNEYFLOW_ACTIONS__DISPATCH__BATCH_SIZE": "200",
}
WAIT_STEP_SECONDS = 0.1


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(WAIT_STEP_SECONDS)


def script() -> str:
    found = shutil.which("journeyflow", path=str(Path(sys.executable).parent))
    assert found, "journeyflow is not installed in this environment"
    return found


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Fleet:
    redis_url: str
    database_url: str
    queue: str
    tmp_path: Path
    workers: list[Worker] = field(default_factory=list)

    def start(self, *options: str, partitions: int = 8, job_timeout: float = 4.0, batch: int = 100,
              redis_url: str | None = None) -> Worker:
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        command = [script(), "worker", "--redis", redis_url or self.redis_url, "--database", self.database_url,
                   "--queue", self.queue, "--partitions", str(partitions), "--job-timeout", str(job_timeout),
                   "--batch", str(batch), *options]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                       env={**os.environ, **ACTIONS_ENV})
        worker = Worker(process, log)
        self.workers.append(worker)
        return worker

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(timeout=30)


def in_event_batch(db: Engine, pid: int) -> bool:
    """Whether worker `pid` is inside an event batch right now: its connection holds a
    partition's advisory lock, which lives exactly as long as that batch's transaction."""
    with db.connect() as conn:
        space = conn.execute(select(partition_lock_space())).scalar_one()
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid = CAST(CAST(:space AS integer) AS oid) AND a.application_name = :name"),
            {"space": space, "name": f"journeyflow-worker-{pid}"}).scalar_one())
