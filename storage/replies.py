"""Handing a webhook's reply to the run that waits for it.

A `call webhook ... as name` step leaves its run waiting at that step with a timer at the
reply deadline. Whoever makes the call (the dispatcher, or `simulate`) wakes the run by moving
that timer to now with the reply as its payload, in the same transaction that records the
call's outcome; the engine's timer loop then continues the run with the reply as the result.
If the timer has already fired (the deadline passed), nothing waits any more and the reply is
only recorded on the outbox row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, update

from .tables import timers


def deliver_reply(conn: Connection, run_id: int, step_id: str, reply: Mapping[str, Any], now: datetime) -> bool:
    """Wake the run waiting at `step_id` with `reply`; whether a run was waiting."""
    done = conn.execute(update(timers).where(and_(timers.c.run_id == run_id, timers.c.step_id == step_id))
                        .values(due_at=now, payload=dict(reply)))
    return done.rowcount > 0
