"""Outbox rows can be cancelled: a message held by quiet hours whose run then exited.

Revision ID: 0009_outbox_cancelled
Revises: 0008_pool_codes_per_user
Create Date: 2026-12-03

Written by hand to match storage/tables.py; tests/storage/test_schema.py compares the two.
A message deferred from 23:00 to 08:00 belongs to its run: when an exit rule or a goal's
`then exit` ends the run before 08:00, the engine marks the row `cancelled` (with the reason in
`last_error`) instead of letting the dispatcher send it. The status check gains that value.
"""

from __future__ import annotations

from alembic import op

revision = "0009_outbox_cancelled"
down_revision = "0008_pool_codes_per_user"
branch_labels = None
depends_on = None

BEFORE = ("pending", "sent", "deferred", "suppressed", "failed", "dead", "uncertain")
AFTER = (*BEFORE, "cancelled")


def _check(statuses: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def _replace_check(statuses: tuple[str, ...]) -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch.create_check_constraint("status", _check(statuses))


def upgrade() -> None:
    _replace_check(AFTER)


def downgrade() -> None:
    op.execute("UPDATE outbox SET status = 'suppressed' WHERE status = 'cancelled'")
    _replace_check(BEFORE)
