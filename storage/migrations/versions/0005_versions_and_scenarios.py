"""Who published each version, and the simulation scenarios saved with a journey.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Written by hand to match storage/tables.py and storage/scenarios.py;
tests/storage/test_schema.py compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("journey_versions") as batch:
        batch.add_column(sa.Column("published_by", sa.String(), nullable=True))
    op.create_table(
        "journey_scenarios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"],
                                name=op.f("fk_journey_scenarios_journey_id_journeys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_scenarios")),
        sa.UniqueConstraint("journey_id", "name", name=op.f("uq_journey_scenarios_journey_id_name")),
    )


def downgrade() -> None:
    op.drop_table("journey_scenarios")
    with op.batch_alter_table("journey_versions") as batch:
        batch.drop_column("published_by")
