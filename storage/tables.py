"""Every table Journeyflow keeps, as SQLAlchemy Core `Table`s on one `MetaData`.

Core rather than the ORM because the engine reads and writes in batches. Each user's position
in each journey is one `journey_runs` row in plain columns (step id, state, row version for
optimistic updates); everything a run is waiting for is a `timers` row; everything it sends
goes through `outbox` under an idempotency key.

Timestamps are `UTCDateTime` (aware, UTC) and have no database default: the engine passes its
own `now`, so time is never read from the database's clock. Ids that grow with users or
traffic are 64-bit (`BigIntId`). `storage/migrations/versions/` must create exactly this; the
tests compare the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from .types import BigIntId, UTCDateTime

# Constraint names are derived, never left to the backend, so a migration can name what it
# alters and both dialects agree. Indexes are named by hand in the tables.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

JOURNEY_STATUSES = ("draft", "live", "paused", "archived")
RUN_STATES = ("active", "waiting", "completed", "exited")
LIVE_RUN_STATES = ("active", "waiting")  # at most one such run per user and journey
TIMER_KINDS = ("wait", "timeout", "goal_window", "deferred_send")  # not enforced: more will come
OUTBOX_STATUSES = ("pending", "sent", "deferred", "suppressed", "failed", "dead", "uncertain", "cancelled")
# How many codes of a pool one person may hold: "one" (asking again gives the same code back)
# or "unlimited" (every claim draws a new code). storage/coupons.py explains both.
CODES_PER_USER = ("one", "unlimited")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` for a CHECK or a partial index; the values are our own constants."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


profiles = Table(
    "profiles",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("traits", JSON, nullable=False, server_default=text("'{}'")),
    Column("tags", JSON, nullable=False, server_default=text("'[]'")),
    Column("timezone", String, nullable=True),  # IANA name; None means the journey's default
    # Set when this profile was merged into a survivor; its identities and runs moved there.
    Column("merged_into", BigIntId, ForeignKey("profiles.id"), nullable=True),
    # "kind:value" of the identity the profile was created for (a user id when there was one).
    # Random splits hash it, so a user lands in the same arm on every machine and backend,
    # whatever row id the profile got; it survives merges with the survivor.
    Column("first_identity", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("row_version", Integer, nullable=False, server_default=text("1")),
)

identities = Table(
    "identities",
    metadata,
    Column("kind", String, primary_key=True),  # user_id, anonymous_id, phone, email, wechat_openid...
    Column("value", String, primary_key=True),
    Column("profile_id", BigIntId, ForeignKey("profiles.id"), nullable=False),
    Index("ix_identities_profile_id", "profile_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("message_id", String, nullable=False, unique=True),  # the sender's id: duplicates are dropped
    Column("profile_id", BigIntId, ForeignKey("profiles.id"), nullable=False),
    Column("type", String, nullable=False),  # track, identify, alias, group, page, screen
    Column("name", String, nullable=True),  # the event's name: track, page and screen only
    Column("properties", JSON, nullable=False, server_default=text("'{}'")),
    Column("occurred_at", UTCDateTime, nullable=False),  # the event's own timestamp
    Column("received_at", UTCDateTime, nullable=False),
    # Set in the transaction that applies the event to journeys: None means accepted, not yet applied.
    Column("processed_at", UTCDateTime, nullable=True),
    Index("ix_events_profile_id_name_occurred_at", "profile_id", "name", "occurred_at"),  # history counts
    Index(
        "ix_events_unprocessed",
        "id",
        sqlite_where=text("processed_at IS NULL"),
        postgresql_where=text("processed_at IS NULL"),
    ),
)

journeys = Table(
    "journeys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String, nullable=False, unique=True),
    Column("name", String, nullable=False),
    Column("status", String, nullable=False, server_default=text("'draft'")),
    # journeys -> journey_versions -> journeys is a cycle: this side is added by ALTER.
    Column(
        "live_version_id",
        Integer,
        ForeignKey("journey_versions.id", use_alter=True),
        nullable=True,
    ),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(_one_of("status", JOURNEY_STATUSES), name="status"),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey_id", Integer, ForeignKey("journeys.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),  # the DSL text as written
    Column("graph", JSON, nullable=False),  # the compiled graph runs execute
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("published_by", String, nullable=True),  # "user:<name>" from the builder, "key:<name>" from the API
    UniqueConstraint("journey_id", "version"),
)

journey_runs = Table(
    "journey_runs",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("profile_id", BigIntId, ForeignKey("profiles.id"), nullable=False),
    Column("journey_id", Integer, ForeignKey("journeys.id"), nullable=False),
    Column("version_id", Integer, ForeignKey("journey_versions.id"), nullable=False),  # kept for the whole run
    Column("step_id", String, nullable=True),
    Column("state", String, nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("wake_at", UTCDateTime, nullable=True),
    # When the run began waiting at its step: events older than this are late for that wait.
    Column("waiting_since", UTCDateTime, nullable=True),
    Column("trigger_event_id", BigIntId, ForeignKey("events.id"), nullable=True),
    Column("results", JSON, nullable=False, server_default=text("'{}'")),  # named step results
    Column("split_arms", JSON, nullable=False, server_default=text("'{}'")),  # split name -> arm taken
    Column("row_version", Integer, nullable=False, server_default=text("1")),  # UPDATE ... WHERE row_version = :v
    CheckConstraint(_one_of("state", RUN_STATES), name="state"),
    Index(
        "uq_journey_runs_live",
        "profile_id",
        "journey_id",
        unique=True,
        sqlite_where=text(_one_of("state", LIVE_RUN_STATES)),
        postgresql_where=text(_one_of("state", LIVE_RUN_STATES)),
    ),
    Index("ix_journey_runs_journey_id_profile_id_entered_at", "journey_id", "profile_id", "entered_at"),  # per journey
    # A batch's users: their live runs, newest entries and goal candidates. The partial unique
    # index above cannot serve these: a query's `state IN (?, ?)` with bound values does not
    # prove its condition, so the planner would scan every run.
    Index("ix_journey_runs_profile_id_journey_id_entered_at", "profile_id", "journey_id", "entered_at"),
)

timers = Table(
    "timers",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("run_id", BigIntId, ForeignKey("journey_runs.id"), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("kind", String, nullable=False),  # one of TIMER_KINDS
    Column("step_id", String, nullable=False),
    Column("payload", JSON, nullable=False, server_default=text("'{}'")),
    UniqueConstraint("run_id", "kind", "step_id"),  # re-scheduling is an upsert
    Index("ix_timers_due_at", "due_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String, nullable=False, unique=True),  # from (run, step, attempt of the step)
    Column("run_id", BigIntId, ForeignKey("journey_runs.id"), nullable=True),
    Column("profile_id", BigIntId, ForeignKey("profiles.id"), nullable=False),
    Column("journey_id", Integer, ForeignKey("journeys.id"), nullable=True),
    Column("step_id", String, nullable=True),
    Column("channel", String, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("send_at", UTCDateTime, nullable=False),
    Column("status", String, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Dispatch (actions/dispatcher.py). A retry waits in 'deferred' until next_attempt_at.
    # lease_until is set while an attempt is in flight: a lease that ran out means a dispatcher
    # died mid-send, so the outcome is unknown (resent under the same key, or 'uncertain').
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("provider", String, nullable=True),  # which provider sent it (log, twilio, fcm...)
    Column("provider_message_id", String, nullable=True),  # the provider's own id, for support tickets
    Column("sent_at", UTCDateTime, nullable=True),
    # What went out, as the dispatcher built it at send time (templates rendered, the profile's
    # address looked up), for `journeyflow deliveries`: the payload only holds what to render.
    Column("recipient", String, nullable=True),  # the phone number, device token or webhook URL
    Column("content", Text, nullable=True),  # the rendered text (a push's title first), or a webhook's body
    CheckConstraint(_one_of("status", OUTBOX_STATUSES), name="status"),
    Index("ix_outbox_status_send_at", "status", "send_at"),
    Index("ix_outbox_profile_id_channel_send_at", "profile_id", "channel", "send_at"),  # frequency caps
)

coupon_pools = Table(
    "coupon_pools",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("codes_per_user", String, nullable=False, server_default=text("'one'")),  # one of CODES_PER_USER
    CheckConstraint(_one_of("codes_per_user", CODES_PER_USER), name="codes_per_user"),
)

coupon_codes = Table(
    "coupon_codes",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("pool_id", Integer, ForeignKey("coupon_pools.id"), nullable=False),
    Column("code", String, nullable=False),
    Column("profile_id", BigIntId, ForeignKey("profiles.id"), nullable=True),  # None while unissued
    Column("run_id", BigIntId, ForeignKey("journey_runs.id"), nullable=True),
    Column("issued_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("redeemed_at", UTCDateTime, nullable=True),
    # The idempotency key of the claim (the outbox key of the coupon step): claiming again with
    # the same key returns the same code, so a retried transition never takes a second one.
    Column("claim_key", String, nullable=True, unique=True),
    # Who a code of a one-per-user pool was drawn for, set with profile_id by that claim and
    # never changed (None in unlimited pools, and for codes drawn before migration 0008). The
    # unique index is what makes "one code per user" hold when two transactions claim for the
    # same person at once. Not a foreign key and not moved by a One-ID merge on purpose: a
    # merge moves profile_id, and a survivor that held a code of its own then holds two; moving
    # this column too would make the index refuse the merge.
    Column("holder_id", BigIntId, nullable=True),
    UniqueConstraint("pool_id", "code"),
    Index("ix_coupon_codes_pool_id_profile_id", "pool_id", "profile_id"),
    Index("uq_coupon_codes_pool_id_holder_id", "pool_id", "holder_id", unique=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("kind", String, nullable=False),  # coupon_pool_empty, ...
    Column("subject", String, nullable=False),  # what it is about: a pool name, a provider
    Column("bucket", UTCDateTime, nullable=False),  # the UTC hour: one alert per kind and subject per hour
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "subject", "bucket"),
)

step_counters = Table(
    "step_counters",
    metadata,
    Column("version_id", Integer, ForeignKey("journey_versions.id"), primary_key=True),
    Column("step_id", String, primary_key=True),
    Column("metric", String, primary_key=True),  # entered, exited, converted, waiting... free text
    Column("bucket", UTCDateTime, primary_key=True),  # the start of a UTC hour
    Column("count", BigInteger, nullable=False),
)

schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    # One pass of a scheduled journey over every profile, at one cron tick. The cursor moves in
    # the same transaction as each batch's entries, so a pass cut short by a crash resumes
    # where it stopped, and a tick is never run twice.
    Column("version_id", Integer, ForeignKey("journey_versions.id"), primary_key=True),
    Column("due_at", UTCDateTime, primary_key=True),
    Column("cursor", BigInteger, nullable=False, server_default=text("0")),  # the last profile id passed
    Column("entered", BigInteger, nullable=False, server_default=text("0")),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
)

conversions = Table(
    "conversions",
    metadata,
    Column("id", BigIntId, primary_key=True, autoincrement=True),
    Column("run_id", BigIntId, ForeignKey("journey_runs.id"), nullable=False),
    Column("goal", String, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    UniqueConstraint("run_id", "goal"),
)
