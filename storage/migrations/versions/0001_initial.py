"""Initial schema: profiles, events, journeys and their runs, timers, outbox, coupons, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written by hand to match storage/tables.py exactly; tests/storage/test_schema.py compares the
two. Types are spelled out here rather than imported, so this file keeps meaning what it meant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # storage.types.BigIntId
TIMESTAMP = sa.DateTime(timezone=True)  # storage.types.UTCDateTime
EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")
LIVE_RUN = "state IN ('active', 'waiting')"


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("tags", sa.JSON(), nullable=False, server_default=EMPTY_LIST),
        sa.Column("timezone", sa.String(), nullable=True),
        sa.Column("merged_into", BIGINT_ID, nullable=True),
        sa.Column("first_identity", sa.String(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.ForeignKeyConstraint(["merged_into"], ["profiles.id"], name=op.f("fk_profiles_merged_into_profiles")),
    )
    op.create_table(
        "identities",
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("profile_id", BIGINT_ID, nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", name=op.f("pk_identities")),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name=op.f("fk_identities_profile_id_profiles")),
    )
    op.create_index(op.f("ix_identities_profile_id"), "identities", ["profile_id"])

    op.create_table(
        "events",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("profile_id", BIGINT_ID, nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("processed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_events_message_id")),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name=op.f("fk_events_profile_id_profiles")),
    )
    op.create_index(
        op.f("ix_events_profile_id_name_occurred_at"), "events", ["profile_id", "name", "occurred_at"]
    )
    op.create_index(
        "ix_events_unprocessed",
        "events",
        ["id"],
        sqlite_where=sa.text("processed_at IS NULL"),
        postgresql_where=sa.text("processed_at IS NULL"),
    )

    op.create_table(
        "journeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False, server_default=sa.text("'draft'")),
        sa.Column("live_version_id", sa.Integer(), nullable=True),  # its foreign key comes below
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("slug", name=op.f("uq_journeys_slug")),
        sa.CheckConstraint(
            "status IN ('draft', 'live', 'paused', 'archived')", name=op.f("ck_journeys_status")
        ),
    )
    op.create_table(
        "journey_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("published_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_versions")),
        sa.UniqueConstraint("journey_id", "version", name=op.f("uq_journey_versions_journey_id_version")),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_journey_versions_journey_id_journeys")),
    )
    # The cycle's other half. On SQLite, batch mode rebuilds the (empty) table to add it.
    with op.batch_alter_table("journeys") as batch:
        batch.create_foreign_key(
            op.f("fk_journeys_live_version_id_journey_versions"), "journey_versions", ["live_version_id"], ["id"]
        )

    op.create_table(
        "journey_runs",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("profile_id", BIGINT_ID, nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("entered_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("wake_at", TIMESTAMP, nullable=True),
        sa.Column("waiting_since", TIMESTAMP, nullable=True),
        sa.Column("trigger_event_id", BIGINT_ID, nullable=True),
        sa.Column("results", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("split_arms", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("row_version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.CheckConstraint(
            "state IN ('active', 'waiting', 'completed', 'exited')", name=op.f("ck_journey_runs_state")
        ),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name=op.f("fk_journey_runs_profile_id_profiles")),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_journey_runs_journey_id_journeys")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["journey_versions.id"], name=op.f("fk_journey_runs_version_id_journey_versions")
        ),
        sa.ForeignKeyConstraint(
            ["trigger_event_id"], ["events.id"], name=op.f("fk_journey_runs_trigger_event_id_events")
        ),
    )
    op.create_index(
        op.f("uq_journey_runs_live"),
        "journey_runs",
        ["profile_id", "journey_id"],
        unique=True,
        sqlite_where=sa.text(LIVE_RUN),
        postgresql_where=sa.text(LIVE_RUN),
    )
    op.create_index(
        op.f("ix_journey_runs_journey_id_profile_id_entered_at"),
        "journey_runs",
        ["journey_id", "profile_id", "entered_at"],
    )
    op.create_index(
        op.f("ix_journey_runs_profile_id_journey_id_entered_at"),
        "journey_runs",
        ["profile_id", "journey_id", "entered_at"],
    )

    op.create_table(
        "timers",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
        sa.UniqueConstraint("run_id", "kind", "step_id", name=op.f("uq_timers_run_id_kind_step_id")),
        sa.ForeignKeyConstraint(["run_id"], ["journey_runs.id"], name=op.f("fk_timers_run_id_journey_runs")),
    )
    op.create_index(op.f("ix_timers_due_at"), "timers", ["due_at"])

    op.create_table(
        "outbox",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=True),
        sa.Column("profile_id", BIGINT_ID, nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("send_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'deferred', 'suppressed', 'failed', 'dead', 'uncertain')",
            name=op.f("ck_outbox_status"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["journey_runs.id"], name=op.f("fk_outbox_run_id_journey_runs")),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name=op.f("fk_outbox_profile_id_profiles")),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_outbox_journey_id_journeys")),
    )
    op.create_index(op.f("ix_outbox_status_send_at"), "outbox", ["status", "send_at"])
    op.create_index(op.f("ix_outbox_profile_id_channel_send_at"), "outbox", ["profile_id", "channel", "send_at"])

    op.create_table(
        "coupon_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_pools")),
        sa.UniqueConstraint("name", name=op.f("uq_coupon_pools_name")),
    )
    op.create_table(
        "coupon_codes",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("profile_id", BIGINT_ID, nullable=True),
        sa.Column("run_id", BIGINT_ID, nullable=True),
        sa.Column("issued_at", TIMESTAMP, nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("redeemed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_codes")),
        sa.UniqueConstraint("pool_id", "code", name=op.f("uq_coupon_codes_pool_id_code")),
        sa.ForeignKeyConstraint(["pool_id"], ["coupon_pools.id"], name=op.f("fk_coupon_codes_pool_id_coupon_pools")),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name=op.f("fk_coupon_codes_profile_id_profiles")),
        sa.ForeignKeyConstraint(["run_id"], ["journey_runs.id"], name=op.f("fk_coupon_codes_run_id_journey_runs")),
    )
    op.create_index(op.f("ix_coupon_codes_pool_id_profile_id"), "coupon_codes", ["pool_id", "profile_id"])

    op.create_table(
        "step_counters",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("metric", sa.String(), nullable=False),
        sa.Column("bucket", TIMESTAMP, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version_id", "step_id", "metric", "bucket", name=op.f("pk_step_counters")),
        sa.ForeignKeyConstraint(
            ["version_id"], ["journey_versions.id"], name=op.f("fk_step_counters_version_id_journey_versions")
        ),
    )
    op.create_table(
        "conversions",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("run_id", BIGINT_ID, nullable=False),
        sa.Column("goal", sa.String(), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint("run_id", "goal", name=op.f("uq_conversions_run_id_goal")),
        sa.ForeignKeyConstraint(["run_id"], ["journey_runs.id"], name=op.f("fk_conversions_run_id_journey_runs")),
    )
    op.create_table(
        "schedule_ticks",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("entered", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("version_id", "due_at", name=op.f("pk_schedule_ticks")),
        sa.ForeignKeyConstraint(["version_id"], ["journey_versions.id"],
                                name=op.f("fk_schedule_ticks_version_id_journey_versions")),
    )


def downgrade() -> None:
    for table in ("schedule_ticks", "conversions", "step_counters", "coupon_codes", "coupon_pools", "outbox", "timers"):
        op.drop_table(table)
    op.drop_table("journey_runs")  # its indexes go with it
    with op.batch_alter_table("journeys") as batch:
        batch.drop_constraint(op.f("fk_journeys_live_version_id_journey_versions"), type_="foreignkey")
    for table in ("journey_versions", "journeys", "events", "identities", "profiles"):
        op.drop_table(table)
