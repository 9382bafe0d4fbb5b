"""One-ID: every identity a message names resolves to one profile, merging profiles when a
message shows two of them are the same person.

Rules:
- An identity (kind, value) belongs to one profile. Unknown identities are attached to the
  profile the message resolves to; a message with only unknown identities creates a profile.
- When a message's identities point at several profiles, they merge into the oldest (the
  survivor): identities, events, runs, outbox rows and coupon codes move over, traits fill in
  (the survivor's win), tags are united, and the other profile keeps only `merged_into`.
- Two profiles that each carry a different `user_id` are different people and never merge:
  the message's own `user_id` decides which profile it is, and its other identities stay where
  they are. This is what keeps a shared device's anonymous id from fusing two customers.
- A merge never leaves a user with two live runs of one journey: the survivor's run goes on,
  the other ends as `exited` (reason: merged).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from storage import counters
from storage.tables import coupon_codes, coupon_pools, events, identities, journey_runs, outbox, profiles

LIVE = ("active", "waiting")
USER_ID = "user_id"
MERGE_TYPE = "merge"  # the events row a merge leaves, for the engine to re-evaluate conditions


def survivor_of(conn: Connection, profile_id: int) -> int:
    """Follow `merged_into` to the profile that holds everything now."""
    while True:
        merged = conn.execute(select(profiles.c.merged_into).where(profiles.c.id == profile_id)).scalar_one()
        if merged is None:
            return profile_id
        profile_id = merged


def _owners(conn: Connection, found: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    owners: dict[tuple[str, str], int] = {}
    for kind, value in found:
        owner = conn.execute(
            select(identities.c.profile_id).where(and_(identities.c.kind == kind, identities.c.value == value))
        ).scalar_one_or_none()
        if owner is not None:
            owners[(kind, value)] = survivor_of(conn, owner)
    return owners


def _user_ids(conn: Connection, profile_id: int) -> set[str]:
    rows = conn.execute(select(identities.c.value).where(
        and_(identities.c.profile_id == profile_id, identities.c.kind == USER_ID)))
    return {r[0] for r in rows}


def first_identity(found: Sequence[tuple[str, str]]) -> str | None:
    """What a new profile is keyed by for random splits: its strongest identity."""
    return f"{found[0][0]}:{found[0][1]}" if found else None


def resolve(conn: Connection, found: Sequence[tuple[str, str]], now: datetime) -> int:
    """The profile these identities name, creating, attaching and merging as the rules say."""
    owners = _owners(conn, found)
    user_id = next((v for k, v in found if k == USER_ID), None)
    if user_id is not None:
        # A profile that belongs to another user id is someone else, whatever else is shared.
        owners = {k: p for k, p in owners.items() if not (_user_ids(conn, p) - {user_id})}
    if user_id is not None and (USER_ID, user_id) in owners:
        target = owners[(USER_ID, user_id)]
    elif owners:
        target = min(owners.values())
    else:
        target = conn.execute(profiles.insert().values(
            traits={}, tags=[], first_identity=first_identity(found), created_at=now, updated_at=now,
        ).returning(profiles.c.id)).scalar_one()

    for other in sorted(set(owners.values()) - {target}):
        ids_target, ids_other = _user_ids(conn, target), _user_ids(conn, other)
        if ids_target and ids_other and ids_target != ids_other:
            continue  # two known customers: never merge
        survivor, absorbed = min(target, other), max(target, other)
        merge(conn, survivor, absorbed, now)
        target = survivor

    claimed = _owners(conn, found)
    for kind, value in found:
        if (kind, value) in claimed:
            continue  # another profile's identity stays with it
        if kind == USER_ID and _user_ids(conn, target) - {value}:
            continue  # the profile already belongs to another user id
        conn.execute(identities.insert().values(kind=kind, value=value, profile_id=target))
    return target


def merge(conn: Connection, survivor: int, absorbed: int, now: datetime) -> None:
    """Move everything of `absorbed` onto `survivor`; see the module's rules."""
    keep, gone = (_profile(conn, survivor), _profile(conn, absorbed))
    traits = {**gone["traits"], **keep["traits"]}
    tags = list(dict.fromkeys([*keep["tags"], *gone["tags"]]))
    conn.execute(update(profiles).where(profiles.c.id == survivor).values(
        traits=traits, tags=tags, timezone=keep["timezone"] or gone["timezone"], updated_at=now,
        row_version=profiles.c.row_version + 1))

    live_here = {r.journey_id for r in conn.execute(select(journey_runs.c.journey_id).where(and_(
        journey_runs.c.profile_id == survivor, journey_runs.c.state.in_(LIVE))))}
    if live_here:
        _end_runs(conn, absorbed, live_here, now)
    for table in (journey_runs, events, outbox, identities):
        conn.execute(update(table).where(table.c.profile_id == absorbed).values(profile_id=survivor))
    # Codes have no index that starts with profile_id, only (pool_id, profile_id): naming every
    # pool (a handful of rows; every code has one) lets the planner probe that index per pool
    # instead of scanning every code of every pool, millions in a big installation.
    conn.execute(update(coupon_codes).where(and_(coupon_codes.c.pool_id.in_(select(coupon_pools.c.id)),
                                                 coupon_codes.c.profile_id == absorbed)).values(profile_id=survivor))
    conn.execute(update(profiles).where(profiles.c.id == absorbed).values(merged_into=survivor, updated_at=now))
    # The merge changed the survivor's profile: the engine re-evaluates the conditions that read
    # what changed, when it applies this row (as it would an identify), against `before`.
    conn.execute(insert(events).values(
        message_id=f"journeyflow:merge:{absorbed}", profile_id=survivor, type=MERGE_TYPE, name=None,
        properties={"absorbed": absorbed, "before": keep}, occurred_at=now, received_at=now))


def _end_runs(conn: Connection, absorbed: int, journey_ids: set[int], now: datetime) -> None:
    """End the absorbed profile's live runs of these journeys, with their step counters (an exit
    where each stood, the gauges down) in the same transaction, as the engine's own exits are.
    The rows are locked first (PostgreSQL) and get a new row version: an engine batch that has
    read one of them then fails its optimistic update and rolls back, instead of writing the
    run back live and counting its moves a second time."""
    query = select(journey_runs.c.id, journey_runs.c.version_id, journey_runs.c.state, journey_runs.c.step_id).where(
        and_(journey_runs.c.profile_id == absorbed, journey_runs.c.state.in_(LIVE),
             journey_runs.c.journey_id.in_(sorted(journey_ids)))).order_by(journey_runs.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    ended = conn.execute(query).all()
    if not ended:
        return
    conn.execute(update(journey_runs).where(journey_runs.c.id.in_([r.id for r in ended])).values(
        state="exited", wake_at=None, waiting_since=None, updated_at=now,
        row_version=journey_runs.c.row_version + 1))
    rows: list[counters.CounterRow] = []
    for run in ended:
        rows += counters.moves(run.version_id, (run.state, run.step_id), ("exited", run.step_id), now)
        rows.append((run.version_id, counters.JOURNEY_LEVEL, counters.EXITED, now, 1))
        if run.step_id is not None:
            rows.append((run.version_id, run.step_id, counters.EXITED, now, 1))
    counters.increment(conn, rows)


def _profile(conn: Connection, profile_id: int) -> dict[str, Any]:
    row = conn.execute(select(profiles.c.traits, profiles.c.tags, profiles.c.timezone)
                       .where(profiles.c.id == profile_id)).one()
    return {"traits": dict(row.traits or {}), "tags": list(row.tags or []), "timezone": row.timezone}
