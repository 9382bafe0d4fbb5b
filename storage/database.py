"""Opening a database and bringing its schema up to date.

SQLite (a file) is the embedded default; PostgreSQL is chosen by its URL
(`postgresql+psycopg://user@host/db`). Both get the same tables from the same migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.pool import StaticPool

MIGRATIONS = Path(__file__).with_name("migrations")

# Applied to every SQLite connection: WAL lets readers run beside the one writer; NORMAL
# syncs at checkpoints rather than every commit, which in WAL mode can lose the last commits
# on power loss but never corrupts; SQLite leaves foreign keys off unless asked, per connection.
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON")

# Any fixed number, so that two processes migrating one PostgreSQL database take turns.
_MIGRATION_LOCK_KEY = 0x4A_46_4D_49_47  # "JFMIG"


def connect(url: str) -> Engine:
    """An engine for `url`; on SQLite, with the pragmas above and real transactions. An
    in-memory SQLite database (`sqlite://`) lives in one connection, so it gets exactly one."""
    memory = make_url(url).get_backend_name() == "sqlite" and make_url(url).database in (None, "", ":memory:")
    engine = create_engine(url, poolclass=StaticPool) if memory else create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Python's sqlite3 (before 3.12's `autocommit`) starts transactions only before DML, so
    # SELECTs, DDL and SAVEPOINTs would run outside them. Turn that off and BEGIN ourselves
    # (`_on_sqlite_begin`); this also lets the pragmas below run outside any transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITER_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


WRITER_OPTION = "journeyflow_writer"


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that will write. On SQLite they BEGIN IMMEDIATE: the
    write lock is taken (or waited for) at the start, so a transaction that read first cannot
    fail later to upgrade because another writer committed in between, and what it read stays
    true until it commits. PostgreSQL ignores the option."""
    return engine.execution_options(**{WRITER_OPTION: True})


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for our migrations (package data), working on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the database up to the newest schema (Alembic `upgrade head`), in one transaction.
    Safe to repeat, and safe for several processes at once on PostgreSQL."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(connection), "head")
