"""The schema, as the migrations build it on each backend, and the constraints the engine leans on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CheckConstraint,
    Connection,
    DefaultClause,
    Engine,
    UniqueConstraint,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, StatementError

import storage.keys
import storage.login_attempts
import storage.scenarios
import storage.signature_replays
import storage.users  # noqa: F401  (these put their tables on the same metadata)
from storage import connect, counters, migrate
from storage.database import alembic_config
from storage.tables import (
    events,
    identities,
    journey_runs,
    journey_versions,
    journeys,
    metadata,
    profiles,
    step_counters,
)

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ALEMBIC_TABLE = "alembic_version"


# -- helpers: the smallest rows that satisfy the foreign keys


def add_profile(conn: Connection) -> int:
    statement = insert(profiles).values(created_at=NOW, updated_at=NOW).returning(profiles.c.id)
    profile_id: int = conn.execute(statement).scalar_one()
    return profile_id


def add_journey(conn: Connection, slug: str = "welcome") -> tuple[int, int]:
    """A journey and its first version: (journey id, version id)."""
    journey_id = conn.execute(
        insert(journeys).values(slug=slug, name=slug, created_at=NOW, updated_at=NOW).returning(journeys.c.id)
    ).scalar_one()
    version_id = conn.execute(
        insert(journey_versions)
        .values(journey_id=journey_id, version=1, source="", graph={}, created_at=NOW)
        .returning(journey_versions.c.id)
    ).scalar_one()
    conn.execute(journeys.update().where(journeys.c.id == journey_id).values(live_version_id=version_id))
    return journey_id, version_id


def add_run(conn: Connection, profile_id: int, journey: tuple[int, int], state: str) -> None:
    journey_id, version_id = journey
    conn.execute(
        insert(journey_runs).values(
            profile_id=profile_id,
            journey_id=journey_id,
            version_id=version_id,
            state=state,
            entered_at=NOW,
            updated_at=NOW,
        )
    )


def add_event(conn: Connection, profile_id: int, message_id: str, occurred_at: datetime = NOW) -> None:
    conn.execute(
        insert(events).values(
            message_id=message_id,
            profile_id=profile_id,
            type="track",
            name="purchase",
            occurred_at=occurred_at,
            received_at=NOW,
        )
    )


# -- migrations


def _reflected(conn: Connection, table: str) -> dict[str, Any]:
    """What we compare of one table, as the database reports it."""
    found = inspect(conn)
    return {
        "columns": [c["name"] for c in found.get_columns(table)],
        "primary_key": found.get_pk_constraint(table)["constrained_columns"],
        "indexes": {
            i["name"]: (i["column_names"], bool(i["unique"]))
            for i in found.get_indexes(table)
            if not i.get("duplicates_constraint")  # PostgreSQL lists unique constraints' indexes too
        },
        "unique": {u["name"]: u["column_names"] for u in found.get_unique_constraints(table)},
        "foreign_keys": {
            f["name"]: (f["constrained_columns"], f["referred_table"], f["referred_columns"])
            for f in found.get_foreign_keys(table)
        },
        "checks": sorted(c["name"] for c in found.get_check_constraints(table)),
        "defaults": {c["name"]: _bare_default(c["default"]) for c in found.get_columns(table) if _declared(c)},
    }


def _declared(column: Any) -> bool:
    """False for the default PostgreSQL gives a serial id, which is not one we declared."""
    default = column["default"]
    return default is not None and not str(default).startswith("nextval(")


def _bare_default(default: str | None) -> str:
    """`'{}'::json` -> `'{}'`: PostgreSQL adds casts that SQLite does not."""
    return re.sub(r"::[a-z ]+$", "", str(default))


def _declared_in_tables(table: str) -> dict[str, Any]:
    t = metadata.tables[table]
    return {
        "columns": [c.name for c in t.columns],
        "primary_key": [c.name for c in t.primary_key.columns],
        "indexes": {i.name: ([c.name for c in i.columns], i.unique) for i in t.indexes},
        "unique": {u.name: [c.name for c in u.columns] for u in t.constraints if isinstance(u, UniqueConstraint)},
        "foreign_keys": {
            f.name: ([c.name for c in f.columns], f.referred_table.name, [e.column.name for e in f.elements])
            for f in t.foreign_key_constraints
        },
        "checks": sorted(str(c.name) for c in t.constraints if isinstance(c, CheckConstraint)),
        "defaults": {
            c.name: str(getattr(c.server_default.arg, "text", c.server_default.arg))
            for c in t.columns
            if isinstance(c.server_default, DefaultClause)
        },
    }


def test_migrate_creates_exactly_the_tables_in_tables_py(empty_db: Engine) -> None:
    migrate(empty_db)
    with empty_db.connect() as conn:
        assert set(inspect(conn).get_table_names()) == set(metadata.tables) | {ALEMBIC_TABLE}
        for table in metadata.tables:
            assert _reflected(conn, table) == _declared_in_tables(table), table
        # Alembic's own comparison also checks column types and nullability.
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_live_run_index_is_partial(empty_db: Engine) -> None:
    migrate(empty_db)
    with empty_db.connect() as conn:
        (index,) = [i for i in inspect(conn).get_indexes("journey_runs") if i["name"] == "uq_journey_runs_live"]
    where = str(index["dialect_options"][f"{empty_db.dialect.name}_where"])
    assert "'active'" in where
    assert "'waiting'" in where
    assert "'completed'" not in where


def test_migrate_twice_is_harmless(empty_db: Engine) -> None:
    migrate(empty_db)
    with empty_db.begin() as conn:
        add_profile(conn)
    migrate(empty_db)
    with empty_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(profiles)) == 1
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
        assert conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalars().all() == [head]


def test_downgrade_removes_every_table(empty_db: Engine) -> None:
    migrate(empty_db)
    with empty_db.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with empty_db.connect() as conn:
        assert inspect(conn).get_table_names() == [ALEMBIC_TABLE]
    migrate(empty_db)


# -- constraints


def test_two_live_runs_for_one_user_and_journey_are_refused(db: Engine) -> None:
    with db.begin() as conn:
        profile_id = add_profile(conn)
        journey = add_journey(conn)
        add_run(conn, profile_id, journey, "waiting")
        with pytest.raises(IntegrityError), conn.begin_nested():
            add_run(conn, profile_id, journey, "waiting")
        with pytest.raises(IntegrityError), conn.begin_nested():
            add_run(conn, profile_id, journey, "active")
    with db.connect() as conn:  # the savepoints rolled back only the refused rows
        assert conn.scalar(select(func.count()).select_from(journey_runs)) == 1


def test_finished_runs_do_not_count_against_the_live_one(db: Engine) -> None:
    with db.begin() as conn:
        profile_id = add_profile(conn)
        journey = add_journey(conn)
        other_journey = add_journey(conn, "win_back")
        add_run(conn, profile_id, journey, "completed")
        add_run(conn, profile_id, journey, "exited")
        add_run(conn, profile_id, journey, "completed")
        add_run(conn, profile_id, journey, "waiting")
        add_run(conn, profile_id, other_journey, "waiting")
        add_run(conn, add_profile(conn), journey, "active")


def test_run_state_is_checked(db: Engine) -> None:
    with db.begin() as conn:
        profile_id = add_profile(conn)
        journey = add_journey(conn)
        with pytest.raises(IntegrityError), conn.begin_nested():
            add_run(conn, profile_id, journey, "sleeping")


def test_a_duplicate_message_id_is_refused(db: Engine) -> None:
    with db.begin() as conn:
        profile_id = add_profile(conn)
        add_event(conn, profile_id, "msg-1")
        with pytest.raises(IntegrityError), conn.begin_nested():
            add_event(conn, profile_id, "msg-1")
        add_event(conn, profile_id, "msg-2")


def test_an_identity_belongs_to_one_profile(db: Engine) -> None:
    with db.begin() as conn:
        first, second = add_profile(conn), add_profile(conn)
        conn.execute(insert(identities).values(kind="phone", value="13800000000", profile_id=first))
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(insert(identities).values(kind="phone", value="13800000000", profile_id=second))
        conn.execute(insert(identities).values(kind="user_id", value="13800000000", profile_id=second))


def test_rolling_back_undoes_released_savepoints_too(db: Engine) -> None:
    # On SQLite this needs our own BEGIN: left to itself, Python's sqlite3 would run a
    # SAVEPOINT issued before any INSERT as a transaction of its own, committed on release.
    with db.connect() as conn:
        transaction = conn.begin()
        with conn.begin_nested():
            add_profile(conn)
        transaction.rollback()
        assert conn.scalar(select(func.count()).select_from(profiles)) == 0


def test_foreign_keys_are_enforced(db: Engine) -> None:
    with db.begin() as conn, pytest.raises(IntegrityError), conn.begin_nested():
        conn.execute(insert(identities).values(kind="email", value="a@example.com", profile_id=404))


# -- types


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/Los_Angeles", "UTC"])
def test_utc_datetime_reads_back_the_same_instant_aware_in_utc(db: Engine, zone: str) -> None:
    written = datetime(2026, 3, 8, 9, 30, 15, 123456, tzinfo=ZoneInfo(zone))
    with db.begin() as conn:
        add_event(conn, add_profile(conn), "msg-1", occurred_at=written)
    with db.connect() as conn:
        read = conn.scalar(select(events.c.occurred_at))
    assert read == written
    assert read is not None
    assert read.tzinfo is UTC


def test_utc_datetime_compares_instants_not_wall_clocks(db: Engine) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    with db.begin() as conn:
        profile_id = add_profile(conn)
        add_event(conn, profile_id, "early", occurred_at=datetime(2026, 1, 1, 7, 0, tzinfo=shanghai))  # 23:00 UTC
        add_event(conn, profile_id, "late", occurred_at=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    with db.connect() as conn:
        since = datetime(2025, 12, 31, 19, 0, tzinfo=ZoneInfo("America/New_York"))  # 00:00 UTC
        found = conn.scalars(select(events.c.message_id).where(events.c.occurred_at >= since)).all()
    assert found == ["late"]


def test_utc_datetime_refuses_a_naive_datetime(db: Engine) -> None:
    with db.begin() as conn:
        profile_id = add_profile(conn)
        with pytest.raises(StatementError, match="naive datetime"):
            add_event(conn, profile_id, "msg-1", occurred_at=datetime(2026, 1, 1, 12, 0))


# -- step counters


def _counts(conn: Connection) -> dict[tuple[str, str, datetime], int]:
    rows = conn.execute(select(step_counters.c.step_id, step_counters.c.metric, step_counters.c.bucket,
                               step_counters.c.count))
    return {(step, metric, bucket): n for step, metric, bucket, n in rows}


def test_counters_add_up_within_a_batch_and_across_calls(db: Engine) -> None:
    hour = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    with db.begin() as conn:
        _, version_id = add_journey(conn)
        counters.increment(
            conn,
            [
                (version_id, "wait_2d", "entered", hour + timedelta(minutes=5), 1),
                (version_id, "wait_2d", "entered", hour + timedelta(minutes=59), 2),  # same hour, same batch
                (version_id, "wait_2d", "exited", hour, 1),
                (version_id, "wait_2d", "entered", hour + timedelta(hours=1), 1),
            ],
        )
    with db.begin() as conn:
        counters.increment(conn, [(version_id, "wait_2d", "entered", hour.astimezone(ZoneInfo("Asia/Shanghai")), 4)])
        counters.increment(conn, [])
    with db.connect() as conn:
        assert _counts(conn) == {
            ("wait_2d", "entered", hour): 7,
            ("wait_2d", "exited", hour): 1,
            ("wait_2d", "entered", hour + timedelta(hours=1)): 1,
        }


# -- SQLite connections


def test_sqlite_connections_use_wal_normal_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:  # two pooled connections
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    finally:
        engine.dispose()


def test_the_unprocessed_events_index_is_partial(empty_db: Engine) -> None:
    """The queue of accepted-but-unapplied events stays small however long the history grows."""
    migrate(empty_db)
    with empty_db.connect() as conn:
        (index,) = [i for i in inspect(conn).get_indexes("events") if i["name"] == "ix_events_unprocessed"]
    assert "processed_at IS NULL" in str(index["dialect_options"][f"{empty_db.dialect.name}_where"])
