"""The run gauges start from the runs already in flight.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Data only. From here on the engine keeps two gauges in `step_counters` (storage/counters.py):
per step `waiting` (runs waiting there now) and per version, at the journey level, `live`
(runs still in the journey), each +1 when a run arrives and -1 when it leaves. Runs that were
already waiting when this runs would leave with a -1 that no +1 ever matched, so their +1s
are written here, in the current hour, from one count of `journey_runs`. Stop the engine
while upgrading, as for any migration: a run that moved meanwhile under the old code would
be counted where it no longer is.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JOURNEY_LEVEL = "__journey__"  # storage.counters.JOURNEY_LEVEL
GAUGES = ("waiting", "live")  # storage.counters.WAITING, LIVE

runs = sa.table("journey_runs", sa.column("version_id", sa.Integer()), sa.column("step_id", sa.String()),
                sa.column("state", sa.String()))
step_counters = sa.table("step_counters", sa.column("version_id", sa.Integer()), sa.column("step_id", sa.String()),
                         sa.column("metric", sa.String()), sa.column("bucket", sa.DateTime(timezone=True)),
                         sa.column("count", sa.BigInteger()))


def upgrade() -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    bucket = sa.bindparam("hour", hour, type_=sa.DateTime(timezone=True))
    columns = ["version_id", "step_id", "metric", "bucket", "count"]
    waiting = (sa.select(runs.c.version_id, runs.c.step_id, sa.literal("waiting"), bucket, sa.func.count())
               .where(sa.and_(runs.c.state == "waiting", runs.c.step_id.is_not(None)))
               .group_by(runs.c.version_id, runs.c.step_id))
    live = (sa.select(runs.c.version_id, sa.literal(JOURNEY_LEVEL), sa.literal("live"), bucket, sa.func.count())
            .where(runs.c.state.in_(("active", "waiting"))).group_by(runs.c.version_id))
    op.execute(step_counters.insert().from_select(columns, waiting))
    op.execute(step_counters.insert().from_select(columns, live))


def downgrade() -> None:
    op.execute(step_counters.delete().where(step_counters.c.metric.in_(GAUGES)))
