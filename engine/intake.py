"""Storing accepted messages: deduplicate by message id, resolve each to a profile, and write the
events with one multi-row insert.

Why a batch: a producer's batch or the API's group commit hands over hundreds of messages at
once, and most of them come from people already known by every identity they carry. Those
resolve from one bulk lookup of identity owners, with no query of their own; a message that
names someone new, or two profiles at once, goes through `identity.resolve` (the One-ID rules,
merges included), after which the lookup is refreshed for what it touched.

Why driver SQL: this is the limit of the HTTP intake, and through SQLAlchemy most of its time
went into building statements and processing every value of every row by its column type. The
hot reads and writes are SQL text built once, run with tuples through the driver
(`Connection.exec_driver_sql`), with values written exactly as the column types would write
them (`unit_of_work.driver`), as the apply path's hot rows are. The One-ID slow path
(`identity.resolve`) stays on SQLAlchemy: it is rare, and its rules matter more than its speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, select

from storage.ids import IdBlock
from storage.tables import identities, profiles

from . import identity
from .messages import EVENT_TYPES, Message
from .unit_of_work import chunks, driver

Identity = tuple[str, str]

# Identity owners, one kind at a time: `kind = ? AND value IN (...)` is a range of the primary
# key (kind, value) per value. The row-value form `(kind, value) IN (VALUES ...)` reads the same
# but SQLite runs it as a scan of every identity: per 400 lookups, 15.7 ms against 2.8 at 20,000
# identities and 440 ms against 5.6 at a million (`benchmarks/engine.py --lookups`, a loaded
# machine); PostgreSQL runs it as one index probe per pair, about twice as slow. `{values}` is
# the list of values (`_listed`).
_OWNERS = ("SELECT identities.kind, identities.value, identities.profile_id FROM identities "
           "WHERE identities.kind = ? AND identities.value IN ({values})")
# The message ids already stored, by the unique index of `events.message_id`.
_KNOWN_MESSAGES = "SELECT events.message_id FROM events WHERE events.message_id IN ({values})"
# The writes. SQLite runs each through the driver's executemany, a row at a time in C.
# PostgreSQL takes each kind as one statement over arrays, a column each, as the apply path's
# timers do: psycopg's executemany runs a statement per row, and its Python per row cost more
# than the rest of the intake. The arrays go in binary (`%b`): as text, psycopg quotes every
# element in Python, which costs more again (client CPU per row of a 500-row events insert:
# 1.8 µs as binary arrays, 12.5 by executemany, 25 as text arrays).
# Events: a concurrent acceptor may have stored the same message id since `_known_message_ids`.
_EVENT_COLUMNS = "events (message_id, profile_id, type, name, properties, occurred_at, received_at)"
_EVENT_INSERT = f"INSERT INTO {_EVENT_COLUMNS} VALUES (?, ?, ?, ?, {{json}}, ?, ?) ON CONFLICT (message_id) DO NOTHING"
_PG_EVENT_INSERT = (f"INSERT INTO {_EVENT_COLUMNS} SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], "
                    "%b::text[], %b::json[], %b::timestamptz[], %b::timestamptz[]) ON CONFLICT (message_id) DO NOTHING")
_PROFILE_COLUMNS = "profiles (id, traits, tags, first_identity, created_at, updated_at)"
_PROFILE_INSERT = f"INSERT INTO {_PROFILE_COLUMNS} VALUES (?, {{json}}, {{json}}, ?, ?, ?)"
_PG_PROFILE_INSERT = (f"INSERT INTO {_PROFILE_COLUMNS} SELECT * FROM unnest(%b::bigint[], %b::json[], %b::json[], "
                      "%b::text[], %b::timestamptz[], %b::timestamptz[])")
_IDENTITY_COLUMNS = "identities (kind, value, profile_id)"
_IDENTITY_INSERT = f"INSERT INTO {_IDENTITY_COLUMNS} VALUES (?, ?, ?)"
_PG_IDENTITY_INSERT = f"INSERT INTO {_IDENTITY_COLUMNS} SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[])"


def _listed(conn: Connection, template: str, values: Sequence[str]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """`template` with `{values}` filled in, and its parameters, for each part of `values`.
    SQLite: a `?` per value, the form SQLAlchemy's expanding IN rendered (so the plan is the one
    it always was), in chunks because parameters have a limit. PostgreSQL: one text array (in
    binary, as the writes' arrays), so there is one statement whatever the count, with the same
    text every time, which psycopg prepares once it has seen it a few times."""
    d = driver(conn)
    if d.postgresql:
        if values:
            yield d.sql(template.format(values="SELECT unnest(%b::text[])")), (list(values),)
        return
    for part in chunks(values):
        yield template.format(values=", ".join(["?"] * len(part))), tuple(part)


def owners_of(conn: Connection, wanted: Iterable[Identity]) -> dict[Identity, int]:
    """The stored owner of each identity that has one (a merge moves identities: the survivor)."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, []).append(value)
    found: dict[Identity, int] = {}
    for kind, values in sorted(by_kind.items()):
        for sql, parameters in _listed(conn, _OWNERS, sorted(set(values))):
            for owned_kind, value, profile_id in conn.exec_driver_sql(sql, (kind, *parameters)):
                found[(owned_kind, value)] = profile_id
    return found


class _Owners:
    """Who owns each identity, as far as this transaction knows, with merges followed."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # Known owners (written or pending), and identities known to have none.
        self.owner: dict[Identity, int] = {}
        self.unknown: set[Identity] = set()

    def prefetch(self, found: Iterable[Identity]) -> None:
        # Membership tests, not set difference: `set - dict.keys()` walks the whole map.
        wanted = sorted({i for i in found if i not in self.owner and i not in self.unknown})
        if wanted:  # per message, after the batch's prefetch, almost always nothing
            self.owner.update(owners_of(self.conn, wanted))
            self.unknown.update(i for i in wanted if i not in self.owner)

    def single_owner(self, found: Sequence[Identity]) -> int | None:
        """The profile when every identity is known and all belong to it: nothing to attach or
        merge, so `identity.resolve` would answer the same without a query."""
        owners = {self.owner.get(i) for i in found}
        if len(owners) != 1 or None in owners:
            return None
        return owners.pop()

    def forget(self, found: Iterable[Identity], profile_ids: Iterable[int]) -> None:
        """After a resolve: its identities may now be owned, and the profiles it touched may
        have been merged away, which moves every identity they owned."""
        touched = set(profile_ids)
        for key in [k for k, owner in self.owner.items() if owner in touched]:
            del self.owner[key]
        for key in found:
            self.owner.pop(key, None)
            self.unknown.discard(key)


class Stored(NamedTuple):
    """What one `store` wrote: how many events were new, and whose they are (the profiles a
    worker must now look at: `profile_id % partitions` names each one's partition)."""

    new: int
    profile_ids: frozenset[int]


def store(conn: Connection, messages: Sequence[Message], now: datetime) -> Stored:
    """Store the messages not seen before as events. `conn` must be a writer transaction
    (`storage.writer`): new profiles take ids before they are written."""
    seen = _known_message_ids(conn, [m.message_id for m in messages])
    fresh: list[tuple[Message, list[Identity]]] = []
    for message in messages:
        if message.message_id not in seen:
            seen.add(message.message_id)
            fresh.append((message, message.identities()))
    owners = _Owners(conn)
    owners.prefetch(i for _, found in fresh for i in found)
    pending = _Pending(conn, now)
    d = pending.driver
    for message, found in fresh:
        owners.prefetch(found)  # no query when the batch's prefetch already answered
        profile_id = owners.single_owner(found) if message.type != "alias" else None
        if profile_id is None and found and message.type != "alias" and all(i in owners.unknown for i in found):
            # Nobody knows any of these identities: One-ID would create a profile and attach
            # them all, which needs no query.
            profile_id = pending.new_profile(found)
            for key in found:
                owners.unknown.discard(key)
                owners.owner[key] = profile_id
        if profile_id is None:
            if message.type == "alias" and message.previous_id:
                pending.write()
                found = found + _previous_identities(conn, message.previous_id)
                owners.prefetch(found)
            before = {owners.owner[i] for i in found if i in owners.owner}
            pending.write()  # the One-ID rules read the tables, and a merge moves events
            profile_id = identity.resolve(conn, found, now)
            # A profile it created took its id from the table, not from the block.
            pending.profile_ids.taken(profile_id)
            owners.forget(found, before | {profile_id})
            owners.prefetch(found)  # the next message of this person takes the fast path
        pending.events.append((message.message_id, profile_id, message.type, message.event,
                               d.json(_stored_properties(message)), d.when(message.timestamp), pending.now))
    pending.write()
    return Stored(pending.stored, frozenset(pending.owners))


class _Pending:
    """Profiles, identities and events decided but not yet written, as the driver's parameter
    tuples: one statement per kind (on SQLite an executemany)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.driver = d = driver(conn)
        self.now = d.when(now)
        self.empty = d.json({}), d.json([])  # a new profile's traits and tags
        self.profile_ids = IdBlock(conn, profiles)
        self.profiles: list[tuple[Any, ...]] = []
        self.identities: list[tuple[str, str, int]] = []
        self.events: list[tuple[Any, ...]] = []
        self.stored = 0
        self.owners: set[int] = set()  # profile ids of the events written

    def new_profile(self, found: Sequence[Identity]) -> int:
        profile_id = self.profile_ids.next()
        self.profiles.append((profile_id, *self.empty, identity.first_identity(found), self.now, self.now))
        self.identities += [(kind, value, profile_id) for kind, value in dict.fromkeys(found)]
        return profile_id

    def write(self) -> None:
        if self.profiles:
            self._insert(_PROFILE_INSERT, _PG_PROFILE_INSERT, self.profiles)
            self._insert(_IDENTITY_INSERT, _PG_IDENTITY_INSERT, self.identities)
            self.profiles, self.identities = [], []
        if self.events:
            self._insert(_EVENT_INSERT, _PG_EVENT_INSERT, self.events)
            self.stored += len(self.events)
            self.owners.update(event[1] for event in self.events)
            self.events = []

    def _insert(self, sql: str, pg_sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.driver.postgresql:
            self.conn.exec_driver_sql(pg_sql, tuple(list(column) for column in zip(*rows, strict=True)))
        else:
            self.conn.exec_driver_sql(self.driver.sql(sql), rows)


def _stored_properties(message: Message) -> dict[str, Any]:
    """What an event row keeps: an event's properties, an identify's traits, or a group's id
    with the group's traits (they describe the group, not the person)."""
    if message.type in EVENT_TYPES:
        return dict(message.properties)
    if message.type == "group":
        return {"group_id": message.group_id, "traits": dict(message.traits)}
    return dict(message.traits)


def _known_message_ids(conn: Connection, message_ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for sql, parameters in _listed(conn, _KNOWN_MESSAGES, sorted(set(message_ids))):
        known.update(message_id for (message_id,) in conn.exec_driver_sql(sql, parameters))
    return known


def _previous_identities(conn: Connection, previous: str) -> list[Identity]:
    """Segment's previousId may be an anonymous id or an older user id: whichever is known."""
    for kind in ("anonymous_id", "user_id"):
        known = conn.execute(select(identities.c.profile_id).where(and_(
            identities.c.kind == kind, identities.c.value == previous))).first()
        if known:
            return [(kind, previous)]
    return [("anonymous_id", previous)]


__all__ = ["Stored", "store"]
