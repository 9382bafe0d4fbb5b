"""The outbox keeps what was sent: the address and the rendered message.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Written by hand to match storage/tables.py; tests/storage/test_schema.py compares the two.
A row's payload holds what to render (a template name, a text with `{{ ... }}`), and the
dispatcher renders it only when it sends, against the profile as it is then. So once a message
has gone out, nothing in the database said what it read or where it went: `journeyflow
deliveries` could show that a welcome SMS was sent, not what it said. Two nullable columns,
filled by the dispatcher from now on; rows sent before stay empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OUTBOX_COLUMNS = (
    ("recipient", sa.String()),
    ("content", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for name, type_ in OUTBOX_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        for name, _ in reversed(OUTBOX_COLUMNS):
            batch.drop_column(name)
