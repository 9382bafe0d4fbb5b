"""The embedded engine loop: a commit of new events wakes it from its idle pause at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from api.engine_loop import EngineLoop
from engine.clock import SystemClock
from engine.messages import parse_message
from engine.runtime import Runtime
from storage.tables import events

IDLE_SECONDS = 60.0  # the loop would sleep this long between passes were it not woken
WOKEN_WITHIN = 10.0


def unapplied(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(events).where(events.c.processed_at.is_(None))) or 0)


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, "not within the time the wake allows"
        time.sleep(0.02)


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
            wait_for(lambda: unapplied(db) == 0, WOKEN_WITHIN)
    finally:
        began = time.monotonic()
        loop.stop()
    assert time.monotonic() - began < WOKEN_WITHIN  # stop wakes it too
