"""The engine, run inside the API process on the embedded default: apply accepted events, fire
due timers and schedule ticks, on a thread of its own, with the runtime's clock.

One process and one SQLite file need no other moving part. With PostgreSQL, `journeyflow
process` can run the same work in processes of its own instead.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager

from sqlalchemy import Engine

from engine.clock import Clock
from engine.runtime import Runtime

log = logging.getLogger("journeyflow.engine")


class EngineLoop:
    def __init__(self, runtime: Runtime, db: Engine, clock: Clock, lock: AbstractContextManager[object],
                 batch: int, idle_seconds: float) -> None:
        self.runtime, self.db, self.clock, self.lock = runtime, db, clock, lock
        self.batch, self.idle_seconds = batch, idle_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by `wake` (new events committed) and by `stop`
        self._thread = threading.Thread(target=self._run, name="journeyflow-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def wake(self, _profile_ids: object = None) -> None:
        """Cut the idle pause short: events were just committed (`Runtime.on_accepted`)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a failed pass rolled back; log it and try again after a pause
                log.exception("engine pass failed")
                busy = False
            if not busy:
                self._wake.wait(self.idle_seconds)
            self._wake.clear()

    def run_once(self) -> bool:
        """One pass: a batch of events, a batch of timers, the schedule ticks that are due
        (durable: a restarted server resumes or catches up, see docs/engine.md). Whether there
        was anything to do."""
        with self.lock:
            done = self.runtime.process_events(self.batch) + self.runtime.fire_due_timers(self.batch)
        with self.lock:
            done += self.runtime.run_due_schedules(self.batch)
        return bool(done)
