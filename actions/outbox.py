"""The dispatcher's SQL: claim due outbox rows, record what happened to them, list and retry.

How a row is sent once, with several dispatchers and crashes:

1. `claim` takes due rows (status pending or deferred, `send_at` and `next_attempt_at` passed,
   no live lease) in one `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`, setting a
   lease and counting the attempt, and commits. On PostgreSQL the inner select is
   `FOR UPDATE SKIP LOCKED`, so two dispatchers take disjoint rows; on SQLite the statement
   holds the single write lock. A leased row is invisible to other claims until the lease ends.
2. The dispatcher sends, then `record` writes each outcome and clears the lease, fenced by the
   attempt number, so a dispatcher that lost its row cannot overwrite a newer attempt.
3. A row whose lease ran out was being sent when its dispatcher died: nobody knows whether it
   went out. `claim` first turns those into `uncertain` where the provider cannot deduplicate
   (never sent blindly again); where it can, they are simply due and are sent again under the
   same idempotency key.

Rows stay `pending`/`deferred` while in flight, so the engine's frequency caps keep counting them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, String, Text, and_, bindparam, func, or_, select, update

from storage.replies import deliver_reply
from storage.tables import events, identities, journey_runs, journeys, outbox, profiles

DUE_STATUSES = ("pending", "deferred")
RETRYABLE_BY_HAND = ("dead", "failed", "uncertain")
INTERRUPTED = ("the dispatcher stopped while sending this message: it may or may not have gone out, and the "
               "provider cannot deduplicate a second attempt. Retry it by hand if it did not arrive")
IDENTITY_ORDER = ("user_id", "email", "phone", "anonymous_id")  # how a profile is named in listings


@dataclass(frozen=True)
class Claimed:
    """A row this dispatcher now holds, with what its templates may use."""

    id: int
    key: str
    channel: str
    payload: Mapping[str, Any]
    attempts: int  # including this one
    lease_until: datetime
    profile_id: int
    journey: str | None
    step_id: str | None
    user: Mapping[str, Any]  # traits and tags, as they are now
    event: Mapping[str, Any] | None  # the event that started the run
    identities: Mapping[str, str]  # kind -> value (phone, user_id...)
    run_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    id: int
    attempts: int  # the attempt this is the outcome of (the fence)
    status: str  # sent, deferred, failed, dead, uncertain, or pending (released unsent)
    error: str | None = None
    next_attempt_at: datetime | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    sent_at: datetime | None = None
    # What was sent, as built at send time (Delivery.to and Delivery.content); kept on the row.
    recipient: str | None = None
    content: str | None = None
    # For a webhook step that waits for its answer: the reply (or the failure) and whom to wake.
    reply: Mapping[str, Any] | None = None
    run_id: int | None = None
    step_id: str | None = None


def _due(now: datetime) -> Any:
    return and_(outbox.c.status.in_(DUE_STATUSES), outbox.c.send_at <= now,
                or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))


def _locked(conn: Connection, query: Select[Any]) -> Select[Any]:
    return query.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else query


def claim(db: Engine, now: datetime, limit: int, lease: timedelta,
          unsafe_to_repeat: Collection[str]) -> list[Claimed]:
    """Take up to `limit` due rows for this dispatcher (see the module docstring). Rows of
    channels in `unsafe_to_repeat` whose lease ran out become `uncertain` first."""
    with db.begin() as conn:
        expired_lease = and_(outbox.c.lease_until.is_not(None), outbox.c.lease_until <= now)
        if unsafe_to_repeat:
            interrupted = _locked(conn, select(outbox.c.id).where(and_(
                outbox.c.status.in_(DUE_STATUSES), expired_lease, outbox.c.channel.in_(sorted(unsafe_to_repeat)))))
            conn.execute(update(outbox).where(outbox.c.id.in_(interrupted.scalar_subquery())).values(
                status="uncertain", last_error=INTERRUPTED, lease_until=None, updated_at=now))
        due = _locked(conn, select(outbox.c.id).where(and_(
            _due(now), or_(outbox.c.lease_until.is_(None), expired_lease)))
            .order_by(outbox.c.send_at, outbox.c.id).limit(limit))
        taken = conn.execute(update(outbox).where(outbox.c.id.in_(due.scalar_subquery())).values(
            lease_until=now + lease, attempts=outbox.c.attempts + 1, updated_at=now)
            .returning(outbox.c.id)).scalars().all()
        return _load(conn, sorted(taken)) if taken else []


def _load(conn: Connection, ids: Sequence[int]) -> list[Claimed]:
    trigger = events.alias("trigger")
    query = (select(outbox.c.id, outbox.c.idempotency_key, outbox.c.channel, outbox.c.payload, outbox.c.attempts,
                    outbox.c.lease_until, outbox.c.profile_id, outbox.c.step_id, outbox.c.run_id, journeys.c.slug,
                    profiles.c.traits, profiles.c.tags, trigger.c.properties.label("event"))
             .join(profiles, profiles.c.id == outbox.c.profile_id)
             .outerjoin(journeys, journeys.c.id == outbox.c.journey_id)
             .outerjoin(journey_runs, journey_runs.c.id == outbox.c.run_id)
             .outerjoin(trigger, trigger.c.id == journey_runs.c.trigger_event_id)
             .where(outbox.c.id.in_(ids)).order_by(outbox.c.id))
    rows = conn.execute(query).all()
    known: dict[int, dict[str, str]] = {}
    profile_ids = sorted({row.profile_id for row in rows})
    for profile_id, kind, value in conn.execute(select(identities.c.profile_id, identities.c.kind,
                                                       identities.c.value).where(
            identities.c.profile_id.in_(profile_ids)).order_by(identities.c.kind, identities.c.value)):
        known.setdefault(profile_id, {}).setdefault(kind, value)
    return [Claimed(id=row.id, key=row.idempotency_key, channel=row.channel, payload=row.payload or {},
                    attempts=row.attempts, lease_until=row.lease_until, profile_id=row.profile_id,
                    journey=row.slug, step_id=row.step_id, run_id=row.run_id,
                    user={**(row.traits or {}), "tags": list(row.tags or [])},
                    event=dict(row.event) if row.event is not None else None,
                    identities=known.get(row.profile_id, {}))
            for row in rows]


def _this_attempt() -> Any:
    return and_(outbox.c.id == bindparam("o_id"), outbox.c.attempts == bindparam("o_attempts"))


# `record`'s statements, built once: only their parameters change from batch to batch, and
# building the construct again (and its cache key) on every call is work for nothing.
_FINISH = (update(outbox).where(_this_attempt())
           .values(status=bindparam("o_status"), last_error=bindparam("o_error"),
                   next_attempt_at=bindparam("o_next"), provider=bindparam("o_provider"),
                   provider_message_id=bindparam("o_message_id"), sent_at=bindparam("o_sent_at"),
                   recipient=func.coalesce(bindparam("o_recipient", type_=String), outbox.c.recipient),
                   content=func.coalesce(bindparam("o_content", type_=Text), outbox.c.content),
                   lease_until=None, updated_at=bindparam("o_now")))
_RELEASE = (update(outbox).where(_this_attempt())
            .values(lease_until=None, attempts=outbox.c.attempts - 1, updated_at=bindparam("o_now")))


def record(db: Engine, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write every outcome in one transaction; each only if its attempt is still the row's
    latest (a row re-claimed after its lease ran out belongs to the newer attempt)."""
    finished = [o for o in outcomes if o.status != "pending"]
    released = [o for o in outcomes if o.status == "pending"]
    with db.begin() as conn:
        if finished:
            conn.execute(_FINISH, [
                {"o_id": o.id, "o_attempts": o.attempts, "o_status": o.status, "o_error": o.error,
                 "o_next": o.next_attempt_at, "o_provider": o.provider, "o_message_id": o.provider_message_id,
                 "o_sent_at": o.sent_at, "o_recipient": o.recipient, "o_content": o.content, "o_now": now}
                for o in finished])
        for o in finished:
            if o.reply is not None and o.run_id is not None and o.step_id is not None:
                deliver_reply(conn, o.run_id, o.step_id, o.reply, now)
        if released:  # never attempted: give the attempt back
            conn.execute(_RELEASE, [{"o_id": o.id, "o_attempts": o.attempts, "o_now": now} for o in released])


# --------------------------------------------------------------------------- listings and retries


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    send_at: datetime
    sent_at: datetime | None
    user: str
    journey: str | None
    step_id: str | None
    channel: str
    status: str
    attempts: int
    provider: str | None
    error: str | None
    recipient: str | None = None  # where it went (phone, device token, URL), once sent
    content: str | None = None  # what it said, rendered; a coupon's code


def deliveries(conn: Connection, statuses: Collection[str] = (), journey: str | None = None,
               user: str | None = None, channels: Collection[str] = (), limit: int = 50) -> list[DeliveryRow]:
    """Outbox rows, newest first, with who they were for, which step sent them and what they said."""
    query = (select(outbox.c.id, outbox.c.send_at, outbox.c.sent_at, outbox.c.profile_id, journeys.c.slug,
                    outbox.c.step_id, outbox.c.channel, outbox.c.status, outbox.c.attempts, outbox.c.provider,
                    outbox.c.last_error, outbox.c.recipient, outbox.c.content, outbox.c.payload)
             .outerjoin(journeys, journeys.c.id == outbox.c.journey_id)
             .order_by(outbox.c.send_at.desc(), outbox.c.id.desc()).limit(limit))
    if statuses:
        query = query.where(outbox.c.status.in_(sorted(statuses)))
    if channels:
        query = query.where(outbox.c.channel.in_(sorted(channels)))
    if journey is not None:
        query = query.where(journeys.c.slug == journey)
    if user is not None:
        query = query.where(outbox.c.profile_id.in_(select(identities.c.profile_id).where(identities.c.value == user)))
    rows = conn.execute(query).all()
    names = _names(conn, sorted({row.profile_id for row in rows}))
    return [DeliveryRow(id=row.id, send_at=row.send_at, sent_at=row.sent_at,
                        user=names.get(row.profile_id, f"profile:{row.profile_id}"), journey=row.slug,
                        step_id=row.step_id, channel=row.channel, status=row.status, attempts=row.attempts,
                        provider=row.provider, error=row.last_error, recipient=row.recipient,
                        content=row.content or _coupon_code(row.channel, row.payload)) for row in rows]


def _coupon_code(channel: str, payload: Any) -> str | None:
    """A coupon row is never dispatched (the engine takes the code and writes it sent): what it
    gave is the code in its payload."""
    if channel != "coupon" or not isinstance(payload, Mapping):
        return None
    code = payload.get("code")
    return str(code) if code else None


def _names(conn: Connection, profile_ids: Sequence[int]) -> dict[int, str]:
    """The most telling identity of each profile (user id, then email, phone, anonymous id)."""
    found: dict[int, dict[str, str]] = {}
    for profile_id, kind, value in conn.execute(select(identities.c.profile_id, identities.c.kind, identities.c.value)
                                                .where(identities.c.profile_id.in_(profile_ids))):
        found.setdefault(profile_id, {})[kind] = value
    return {pid: next((kinds[k] for k in IDENTITY_ORDER if k in kinds), f"profile:{pid}")
            for pid, kinds in found.items()}


def retry(conn: Connection, now: datetime, ids: Collection[int] = (),
          statuses: Collection[str] = ("dead",)) -> int:
    """Put rows back in the queue with a fresh set of attempts: the given `ids` (whatever their
    status among RETRYABLE_BY_HAND), or with no ids every row in `statuses`. How many."""
    wanted = [s for s in statuses if s in RETRYABLE_BY_HAND]
    condition = (and_(outbox.c.id.in_(sorted(ids)), outbox.c.status.in_(RETRYABLE_BY_HAND)) if ids
                 else outbox.c.status.in_(wanted))
    done = conn.execute(update(outbox).where(condition).values(
        status="pending", attempts=0, next_attempt_at=None, lease_until=None, updated_at=now))
    return done.rowcount


def counts(conn: Connection) -> dict[str, int]:
    """Rows per status."""
    return {status: n for status, n in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))}
