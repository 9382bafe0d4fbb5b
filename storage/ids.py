"""Row ids handed out before the rows are written, so that batched inserts can refer to them.

Why: a batch that creates profiles or journey runs needs their ids at once (events point at
profiles; idempotency keys derive from run ids), but writing each row as it is decided costs a
round trip per row. PostgreSQL hands out ids from the table's own sequence, a block per round
trip (unused ids are harmless gaps); blocks double while one transaction keeps asking, so a
batch of hundreds of new people costs a few round trips, not one per 64, while a transaction
that wants a few ids wastes few. SQLite has no sequences; it needs the caller to hold the write
lock (a transaction begun with `storage.writer`, i.e. BEGIN IMMEDIATE), so that no one else
inserts into the table until this transaction commits, and counts up from max(id). An insert
of the same transaction that lets SQLite choose the id (it takes max(id) + 1, the block's next)
must be reported with `taken`, or the block would hand that id out again.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, func, select

BLOCK = 64  # ids of the first round trip to PostgreSQL's sequence
MAX_BLOCK = 4096  # and of any one round trip, however many the transaction takes

_NEXTVAL = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


class IdBlock:
    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self.free: list[int] = []  # the ids not yet handed out, highest first
        self.size = BLOCK
        self.top: int | None = None  # SQLite: the highest id handed out or stored

    def next(self) -> int:
        if not self.free:
            if self.conn.dialect.name == "postgresql":
                self.free = sorted((int(i) for (i,) in self.conn.exec_driver_sql(
                    _NEXTVAL, (self.table.name, self.size))), reverse=True)
                self.size = min(self.size * 2, MAX_BLOCK)
            else:
                if self.top is None:
                    self.top = int(self.conn.execute(select(func.coalesce(func.max(self.table.c.id), 0))).scalar_one())
                self.free = list(range(self.top + self.size, self.top, -1))
                self.top += self.size
        return self.free.pop()

    def taken(self, row_id: int) -> None:
        """`row_id` was written to the table by other means in this transaction (an insert that
        let the database choose it): no id up to it may be handed out. Only SQLite needs it; a
        sequence never hands out an id twice."""
        if self.conn.dialect.name != "postgresql" and self.top is not None:
            self.free = [i for i in self.free if i > row_id]
            self.top = max(self.top, row_id)
