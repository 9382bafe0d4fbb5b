"""Login attempts counted in the database, and signatures remembered against replay.

Revision ID: 0010_logins_signatures
Revises: 0009_outbox_cancelled
Create Date: 2026-12-04

Written by hand to match storage/login_attempts.py and storage/signature_replays.py;
tests/storage/test_schema.py compares them. Both were process memory before, which several
server processes (or concurrent requests to one) could get around.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_logins_signatures"
down_revision = "0009_outbox_cancelled"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_window_ends_at", "login_attempts", ["window_ends_at"])
    op.create_table(
        "seen_signatures",
        sa.Column("signature", sa.String(), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_seen_signatures")),
    )
    op.create_index("ix_seen_signatures_expires_at", "seen_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_table("seen_signatures")
    op.drop_table("login_attempts")
