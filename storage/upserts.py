"""`INSERT ... ON CONFLICT` on either backend.

The statement reads the same on SQLite and PostgreSQL, but SQLAlchemy builds it from each
dialect's own `insert` (the generic one has no `on_conflict_*`): one place picks it, and says
plainly when a third backend arrives.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert_into(table: Table, conn: Connection) -> postgresql.Insert | sqlite.Insert:
    """An insert into `table` that takes `on_conflict_do_update` / `_do_nothing` on `conn`'s backend."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"{table.name} needs SQLite or PostgreSQL, not {dialect}")
