"""Kill the engine with SIGKILL in the middle of a large batch, restart it, and check that every
accepted event was applied exactly once and no action was queued twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from engine.clock import SystemClock
from engine.messages import parse_message
from engine.runtime import Runtime
from storage import connect, migrate
from storage.tables import events, journey_runs, outbox, profiles

EVENTS = 20_000
BATCH = 200
PING = '''journey "Ping"
  trigger event "ping"
  entry always

  @count update user.pings += 1
  @reply send sms "pong {{ user.pings }}"
'''


def processed(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(events).where(events.c.processed_at.is_not(None))))


def test_sigkill_mid_batch_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    db = connect(url)
    migrate(db)
    runtime = Runtime(db, SystemClock())
    runtime.publish(PING)
    now = datetime.now(UTC)
    users = 50
    runtime.accept([parse_message({"type": "track", "event": "ping", "userId": f"u{i % users}",
                                   "messageId": f"m{i}", "timestamp": now.isoformat()}, now) for i in range(EVENTS)])

    script = shutil.which("journeyflow", path=str(Path(sys.executable).parent))
    assert script
    command = [script, "process", "--database", url, "--batch", str(BATCH), "--until-idle"]
    kills = 0
    for _ in range(3):  # kill it up to three times, each in the middle of its work
        engine = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = processed(db)
        deadline = time.monotonic() + 60
        while processed(db) < min(started + BATCH, EVENTS) and engine.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if engine.poll() is None:
            os.kill(engine.pid, signal.SIGKILL)
            kills += 1
        engine.wait(timeout=30)
        if processed(db) == EVENTS:
            break
    assert kills >= 1, "the engine finished before it could be killed: raise EVENTS"
    final = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert final.returncode == 0, final.stderr

    with db.connect() as conn:
        assert processed(db) == EVENTS
        assert conn.scalar(select(func.count()).select_from(journey_runs)) == EVENTS
        assert conn.scalar(select(func.count()).select_from(outbox)) == EVENTS
        assert conn.scalar(select(func.count(func.distinct(outbox.c.idempotency_key)))) == EVENTS
        pings = [traits.get("pings") for (traits,) in conn.execute(select(profiles.c.traits))]
    assert sorted(pings) == [EVENTS // users] * users  # every event counted once, per user
