"""Row ids handed out before the rows are written, so that batched inserts can refer to them.

Why: a batch that creates profiles or journey runs needs their ids at once (events point at
profiles; idempotency keys derive from run ids), but writing each row as it is decided costs a
round trip per row. PostgreSQL hands out ids from the table's own sequence, a block per round
trip (unused ids are harmless gaps). SQLite has no sequences; it needs the caller to hold the
write lock (a transaction begun with `storage.writer`, i.e. BEGIN IMMEDIATE), so that no one
else inserts into the table until this transaction commits, and counts up from max(id).
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select, text

BLOCK = 64  # ids per round trip to PostgreSQL's sequence


class IdBlock:
    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self.free: list[int] = []
        self.top: int | None = None  # SQLite: the highest id handed out or stored

    def next(self) -> int:
        if not self.free:
            if self.conn.dialect.name == "postgresql":
                self.free = [int(i) for i in self.conn.execute(
                    text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                    {"table": self.table.name, "n": BLOCK}).scalars()]
            else:
                if self.top is None:
                    self.top = int(self.conn.execute(select(func.coalesce(func.max(self.table.c.id), 0))).scalar_one())
                self.free = list(range(self.top + 1, self.top + 1 + BLOCK))
                self.top += BLOCK
        return self.free.pop(0)
