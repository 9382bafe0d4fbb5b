"""The embedded engine loop: a commit of new events wakes it from its idle pause at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import Engine

from api.engine_loop import EngineLoop
from engine.clock import SystemClock
from engine.messages import parse_message
from engine.runtime import Runtime

from ..workers.fleet import wait_until
from ..workers.workload import unapplied

IDLE_SECONDS = 60.0  # the loop would sleep this long between passes were it not woken
WOKEN_WITHIN = 10.0


def test_accepted_events_wake_the_idle_loop(db: Engine) -> None:
    runtime = Runtime(db, SystemClock())
    runtime.publish('journey "Hello"\n  trigger event "hi"\n\n  @tag add tag "greeted"\n', slug="hello")
    loop = EngineLoop(runtime, db, SystemClock(), threading.RLock(), 100, IDLE_SECONDS)
    runtime.on_accepted = loop.wake
    loop.start()
    try:
        time.sleep(0.3)  # the first pass found nothing: the loop is in its idle pause now
        for n in range(3):
            runtime.accept([parse_message({"type": "track", "event": "hi", "userId": f"u{n}",
                                           "messageId": f"hi-{n}"}, datetime.now(UTC))])
            wait_until(lambda: unapplied(db) == 0, WOKEN_WITHIN, f"event {n} applied after the wake")
    finally:
        began = time.monotonic()
        loop.stop()
    assert time.monotonic() - began < WOKEN_WITHIN  # stop wakes it too
