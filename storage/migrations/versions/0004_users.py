"""Builder users and their sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

Written by hand to match storage/users.py; tests/storage/test_schema.py compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "builder_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_login_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builder_users")),
        sa.UniqueConstraint("username", name=op.f("uq_builder_users_username")),
    )
    op.create_table(
        "builder_sessions",
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["builder_users.id"],
                                name=op.f("fk_builder_sessions_user_id_builder_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_builder_sessions")),
    )
    op.create_index("ix_builder_sessions_user_id", "builder_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_builder_sessions_user_id", table_name="builder_sessions")
    op.drop_table("builder_sessions")
    op.drop_table("builder_users")
