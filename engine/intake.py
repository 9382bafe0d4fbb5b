"""Storing accepted messages: deduplicate by message id, resolve each to a profile, and write the
events with one multi-row insert.

Why a batch: a producer's batch or the API's group commit hands over hundreds of messages at
once, and most of them come from people already known by every identity they carry. Those
resolve from one bulk lookup of identity owners, with no query of their own; a message that
names someone new, or two profiles at once, goes through `identity.resolve` (the One-ID rules,
merges included), after which the lookup is refreshed for what it touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.ids import IdBlock
from storage.tables import events, identities, profiles

from . import identity
from .messages import EVENT_TYPES, Message
from .unit_of_work import chunks

Identity = tuple[str, str]


# Identity owners, one kind at a time: `kind = ? AND value IN (...)` is a range of the primary
# key (kind, value) per value. The row-value form `(kind, value) IN (VALUES ...)` reads the same
# but SQLite runs it as a scan of every identity: per 400 lookups, 15.7 ms against 2.8 at 20,000
# identities and 440 ms against 5.6 at a million (`benchmarks/engine.py --lookups`, a loaded
# machine); PostgreSQL runs it as one index probe per pair, about twice as slow. Built once:
# SQLAlchemy caches its compiled form, and the expanding parameter takes each chunk's values.
OWNERS = (select(identities.c.kind, identities.c.value, identities.c.profile_id)
          .where(identities.c.kind == bindparam("b_kind"),
                 identities.c.value.in_(bindparam("b_values", expanding=True))))


def owners_of(conn: Connection, wanted: Iterable[Identity]) -> dict[Identity, int]:
    """The stored owner of each identity that has one (a merge moves identities: the survivor)."""
    by_kind: dict[str, list[str]] = {}
    for kind, value in wanted:
        by_kind.setdefault(kind, []).append(value)
    found: dict[Identity, int] = {}
    for kind, values in sorted(by_kind.items()):
        for part in chunks(sorted(set(values))):
            for row in conn.execute(OWNERS, {"b_kind": kind, "b_values": list(part)}):
                found[(row.kind, row.value)] = row.profile_id
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
    fresh: list[Message] = []
    for message in messages:
        if message.message_id not in seen:
            seen.add(message.message_id)
            fresh.append(message)
    owners = _Owners(conn)
    owners.prefetch(i for m in fresh for i in m.identities())
    pending = _Pending(conn, now)
    for message in fresh:
        found = message.identities()
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
                found += _previous_identities(conn, message.previous_id)
                owners.prefetch(found)
            before = {owners.owner[i] for i in found if i in owners.owner}
            pending.write()  # the One-ID rules read the tables, and a merge moves events
            profile_id = identity.resolve(conn, found, now)
            owners.forget(found, before | {profile_id})
            owners.prefetch(found)  # the next message of this person takes the fast path
        props = _stored_properties(message)
        pending.events.append({"message_id": message.message_id, "profile_id": profile_id, "type": message.type,
                               "name": message.event, "properties": props, "occurred_at": message.timestamp,
                               "received_at": now})
    pending.write()
    return Stored(pending.stored, frozenset(pending.owners))


class _Pending:
    """Profiles, identities and events decided but not yet written: one insert per kind."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn, self.now = conn, now
        self.profile_ids = IdBlock(conn, profiles)
        self.profiles: list[dict[str, Any]] = []
        self.identities: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.stored = 0
        self.owners: set[int] = set()  # profile ids of the events written

    def new_profile(self, found: Sequence[Identity]) -> int:
        profile_id = self.profile_ids.next()
        self.profiles.append({"id": profile_id, "traits": {}, "tags": [], "created_at": self.now,
                              "updated_at": self.now, "first_identity": identity.first_identity(found)})
        self.identities += [{"kind": kind, "value": value, "profile_id": profile_id}
                            for kind, value in dict.fromkeys(found)]
        return profile_id

    def write(self) -> None:
        if self.profiles:
            self.conn.execute(insert(profiles), self.profiles)
            self.conn.execute(insert(identities), self.identities)
            self.profiles, self.identities = [], []
        if self.events:
            insert_ = postgresql.insert(events) if self.conn.dialect.name == "postgresql" else sqlite.insert(events)
            # A concurrent acceptor may have stored the same message id since the check above.
            self.conn.execute(insert_.on_conflict_do_nothing(index_elements=["message_id"]), self.events)
            self.stored += len(self.events)
            self.owners.update(event["profile_id"] for event in self.events)
            self.events = []


def _stored_properties(message: Message) -> dict[str, Any]:
    """What an event row keeps: an event's properties, an identify's traits, or a group's id
    with the group's traits (they describe the group, not the person)."""
    if message.type in EVENT_TYPES:
        return dict(message.properties)
    if message.type == "group":
        return {"group_id": message.group_id, "traits": dict(message.traits)}
    return dict(message.traits)


# The message ids already stored, by the unique index of `events.message_id`; built once.
KNOWN_MESSAGES = select(events.c.message_id).where(events.c.message_id.in_(bindparam("b_ids", expanding=True)))


def _known_message_ids(conn: Connection, message_ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for part in chunks(sorted(set(message_ids))):
        known.update(conn.execute(KNOWN_MESSAGES, {"b_ids": list(part)}).scalars())
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
