"""Dispatch: outbox attempt bookkeeping, coupon claim keys, alerts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Written by hand to match storage/tables.py; tests/storage/test_schema.py compares the two.
The outbox gains what the dispatcher needs to send each row once (a lease while an attempt is
in flight, the time of the next retry, the provider's message id); a coupon code remembers
the key that claimed it, so the same claim gets the same code back; alerts hold what an
operator must hear about (a coupon pool running dry), once per subject per hour.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # storage.types.BigIntId
TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime
OUTBOX_COLUMNS = (
    ("next_attempt_at", TIMESTAMP),
    ("lease_until", TIMESTAMP),
    ("provider", sa.String()),
    ("provider_message_id", sa.String()),
    ("sent_at", TIMESTAMP),
)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for name, type_ in OUTBOX_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("coupon_codes") as batch:
        batch.add_column(sa.Column("claim_key", sa.String(), nullable=True))
        batch.create_unique_constraint(op.f("uq_coupon_codes_claim_key"), ["claim_key"])
    op.create_table(
        "alerts",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("bucket", TIMESTAMP, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("kind", "subject", "bucket", name=op.f("uq_alerts_kind_subject_bucket")),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    with op.batch_alter_table("coupon_codes") as batch:
        batch.drop_constraint(op.f("uq_coupon_codes_claim_key"), type_="unique")
        batch.drop_column("claim_key")
    with op.batch_alter_table("outbox") as batch:
        for name, _ in reversed(OUTBOX_COLUMNS):
            batch.drop_column(name)
