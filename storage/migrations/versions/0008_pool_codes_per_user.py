"""Coupon pools say how many codes one person may hold: one (the default) or unlimited.

Revision ID: 0008_pool_codes_per_user
Revises: 0007
Create Date: 2026-12-03

Written by hand to match storage/tables.py; tests/storage/test_schema.py compares the two.
Until now a second journey issuing from the same pool, or a re-entry into the same journey,
drew another code. The business case is one code per person, so every pool, those that exist
included, becomes `codes_per_user = 'one'`: a claim for someone who already holds a code of
the pool gets that code back. `coupon_codes.holder_id` is set, from now on, to the person a
code of such a pool was drawn for; its unique index with `pool_id` keeps two transactions
claiming for the same person at once from both drawing a code (NULLs never collide, so
unlimited pools and the codes issued before this migration are not constrained). Nothing is
backfilled: a claim looks for the codes a person holds by `profile_id` too, so codes issued
before are found and given again all the same.

No table is copied on SQLite, as batch mode would copy `coupon_pools` to add its CHECK: that
copy drops the old table, which SQLite refuses (foreign keys are on) once codes refer to it, and
the codes table may hold millions of rows. SQLite's own ALTER TABLE adds a column with its
CHECK, and drops it again (3.35 or newer).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_pool_codes_per_user"
down_revision = "0007"
branch_labels = None
depends_on = None

CODES_PER_USER = ("one", "unlimited")  # storage.tables.CODES_PER_USER, as of this revision
CHECK = f"codes_per_user IN ({', '.join(repr(value) for value in CODES_PER_USER)})"
CHECK_NAME = "ck_coupon_pools_codes_per_user"
HOLDER_INDEX = "uq_coupon_codes_pool_id_holder_id"


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE coupon_pools ADD COLUMN codes_per_user VARCHAR DEFAULT 'one' NOT NULL "
                   f"CONSTRAINT {CHECK_NAME} CHECK ({CHECK})")
    else:
        op.add_column("coupon_pools", sa.Column("codes_per_user", sa.String(), nullable=False,
                                                server_default=sa.text("'one'")))
        op.create_check_constraint(op.f(CHECK_NAME), "coupon_pools", CHECK)
    op.add_column("coupon_codes", sa.Column("holder_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                            nullable=True))
    op.create_index(HOLDER_INDEX, "coupon_codes", ["pool_id", "holder_id"], unique=True)


def downgrade() -> None:
    op.drop_index(HOLDER_INDEX, table_name="coupon_codes")
    if op.get_context().dialect.name == "sqlite":
        op.execute("ALTER TABLE coupon_codes DROP COLUMN holder_id")
        op.execute("ALTER TABLE coupon_pools DROP COLUMN codes_per_user")
    else:
        op.drop_column("coupon_codes", "holder_id")
        op.drop_constraint(op.f(CHECK_NAME), "coupon_pools", type_="check")
        op.drop_column("coupon_pools", "codes_per_user")
