"""API keys: write keys for producers, admin keys for management, stored hashed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written by hand to match storage/keys.py; tests/storage/test_schema.py compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("hash", name=op.f("uq_api_keys_hash")),
        sa.CheckConstraint("kind IN ('write', 'admin')", name=op.f("ck_api_keys_kind")),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
