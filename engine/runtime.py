"""The runtime: the I/O edge that feeds the pure state machine from storage and commits what it
decides.

Three loops of work, each a batch in one transaction:
- `accept(messages)`: resolve identities (One-ID) and store events, deduplicated by message
  id. After it returns, the events are durable; nothing has been applied yet.
- `process_events()`: apply stored events in order per user (goals, then exits, then waits,
  then entries), and mark them processed in the same transaction as every run change and
  outbox row they cause. A crash rolls all of it back, so each event is applied exactly once.
- `fire_due_timers()`: the same for timers that are due (waits ending, `wait for` timeouts).

Runs keep the journey version they entered with; a paused journey takes no entries and its
timers wait until it is resumed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dsl import compile_source
from dsl import model as dm
from storage import counters
from storage.tables import (
    conversions,
    coupon_codes,
    coupon_pools,
    events,
    identities,
    journey_runs,
    journey_versions,
    journeys,
    outbox,
    profiles,
    timers,
)

from . import identity
from .clock import Clock
from .machine import (
    LIVE_STATES,
    MESSAGE_CHANNELS,
    CancelTimers,
    Conversion,
    Effect,
    EventArrived,
    ExitRequested,
    GoalReached,
    Input,
    Outbound,
    ProfileUpdate,
    Program,
    Run,
    ScheduleTimer,
    Start,
    TagUpdate,
    TimerDue,
    Trace,
    advance,
    apply_tag,
    apply_update,
    may_enter,
)
from .matcher import CompiledMatcher, Decisions, Matcher
from .messages import Message
from .scope import EventPredicate, Scope

JOURNEY_LEVEL = "__journey__"  # the step id under which journey-wide counters are kept
COUNTED_STATUSES = ("pending", "sent", "deferred")  # outbox rows that count towards caps
TIMER_KIND = "step"  # a run waits at one step at a time, so it has at most one timer


class JourneyNotFound(LookupError):
    pass


@dataclass(frozen=True)
class TraceRecord:
    """A trace line with who and where, for `simulate --trace` and the builder's preview."""

    at: datetime
    profile_id: int
    journey: str
    trace: Trace


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "journey"


# --------------------------------------------------------------------------- ports


class _SqlHistory:
    def __init__(self, conn: Connection, profile_id: int) -> None:
        self.conn, self.profile_id = conn, profile_id

    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        query = select(events.c.properties).where(and_(events.c.profile_id == self.profile_id, events.c.name == event))
        if since is not None:
            query = query.where(events.c.occurred_at >= since)
        if where is None:
            return int(self.conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())
        return sum(1 for (props,) in self.conn.execute(query) if where(props or {}))


class _SqlPorts:
    def __init__(self, conn: Connection, profile_id: int, run_id: int, now: datetime) -> None:
        self.conn, self.profile_id, self.run_id, self.now = conn, profile_id, run_id, now

    def sent_count(self, channel: str | None, since: datetime) -> int:
        channels = [channel] if channel else sorted(MESSAGE_CHANNELS)
        return int(self.conn.execute(select(func.count()).select_from(outbox).where(and_(
            outbox.c.profile_id == self.profile_id, outbox.c.channel.in_(channels),
            outbox.c.send_at >= since, outbox.c.status.in_(COUNTED_STATUSES)))).scalar_one())

    def claim_coupon(self, pool: str, key: str) -> Mapping[str, Any] | None:
        pool_id = self.conn.execute(select(coupon_pools.c.id).where(coupon_pools.c.name == pool)).scalar_one_or_none()
        if pool_id is None:
            return None
        query = (select(coupon_codes.c.id, coupon_codes.c.code, coupon_codes.c.expires_at)
                 .where(and_(coupon_codes.c.pool_id == pool_id, coupon_codes.c.profile_id.is_(None)))
                 .order_by(coupon_codes.c.id).limit(1))
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # concurrent issuers take different codes
        row = self.conn.execute(query).one_or_none()
        if row is None:
            return None
        self.conn.execute(update(coupon_codes).where(coupon_codes.c.id == row.id).values(
            profile_id=self.profile_id, run_id=self.run_id, issued_at=self.now))
        expires = row.expires_at.isoformat() if row.expires_at else None
        return {"code": row.code, "expires_at": expires}


# --------------------------------------------------------------------------- profiles


@dataclass
class _Profile:
    """A profile loaded for one unit of work; written back once if it changed."""

    id: int
    user: dict[str, Any]
    changed: bool = False

    @classmethod
    def load(cls, conn: Connection, profile_id: int) -> _Profile:
        """The profile, or the survivor it was merged into."""
        while True:
            row = conn.execute(select(profiles.c.traits, profiles.c.tags, profiles.c.timezone, profiles.c.merged_into)
                               .where(profiles.c.id == profile_id)).one()
            if row.merged_into is None:
                break
            profile_id = row.merged_into
        user = {**(row.traits or {}), "tags": list(row.tags or [])}
        if row.timezone:
            user["timezone"] = row.timezone
        return cls(profile_id, user)

    def save(self, conn: Connection, now: datetime) -> None:
        if not self.changed:
            return
        traits = {k: v for k, v in self.user.items() if k != "tags"}
        zone = self.user.get("timezone")
        conn.execute(update(profiles).where(profiles.c.id == self.id).values(
            traits=traits, tags=list(self.user.get("tags") or []), updated_at=now,
            timezone=zone if isinstance(zone, str) else None, row_version=profiles.c.row_version + 1))
        self.changed = False


# --------------------------------------------------------------------------- the runtime


@dataclass
class _Live:
    journey_id: int
    slug: str
    status: str
    version_id: int | None  # the version new users enter


@dataclass
class _Work:
    """What one transaction has to write besides run rows."""

    counters: list[counters.CounterRow] = field(default_factory=list)
    traces: list[TraceRecord] = field(default_factory=list)


class Runtime:
    def __init__(self, db: Engine, clock: Clock, matcher: Matcher | None = None,
                 observer: Callable[[TraceRecord], None] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.matcher = matcher or CompiledMatcher()
        self.observer = observer
        self.programs: dict[int, Program] = {}  # version id -> program, loaded on demand
        self.live: dict[int, _Live] = {}  # journey id -> its state
        self.version_journeys: dict[int, int] = {}  # version id -> journey id
        self.reload()

    # ------------------------------------------------------------------ journeys

    def publish(self, source: str, slug: str | None = None) -> int:
        """Compile and publish a new version of a journey (creating it if new); its id."""
        compiled = compile_source(source)
        now = self.clock.now()
        slug = slug or slugify(compiled.name)
        with self.db.begin() as conn:
            journey_id = conn.execute(select(journeys.c.id).where(journeys.c.slug == slug)).scalar_one_or_none()
            if journey_id is None:
                journey_id = conn.execute(insert(journeys).values(
                    slug=slug, name=compiled.name, status="live", created_at=now, updated_at=now
                ).returning(journeys.c.id)).scalar_one()
            number = conn.execute(select(func.coalesce(func.max(journey_versions.c.version), 0))
                                  .where(journey_versions.c.journey_id == journey_id)).scalar_one() + 1
            version_id = conn.execute(insert(journey_versions).values(
                journey_id=journey_id, version=number, source=source, graph=compiled.to_dict(),
                created_at=now, published_at=now).returning(journey_versions.c.id)).scalar_one()
            conn.execute(update(journeys).where(journeys.c.id == journey_id).values(
                live_version_id=version_id, name=compiled.name, status="live", updated_at=now))
        self.reload()
        return int(version_id)

    def set_status(self, slug: str, status: str) -> None:
        """Pause, resume (`live`) or archive a journey."""
        with self.db.begin() as conn:
            done = conn.execute(update(journeys).where(journeys.c.slug == slug).values(
                status=status, updated_at=self.clock.now()))
            if done.rowcount == 0:
                raise JourneyNotFound(slug)
        self.reload()

    def program(self, conn: Connection, version_id: int) -> Program:
        program = self.programs.get(version_id)
        if program is None:
            source = conn.execute(select(journey_versions.c.source)
                                  .where(journey_versions.c.id == version_id)).scalar_one()
            program = Program(str(version_id), compile_source(source))
            self.programs[version_id] = program
        return program

    def reload(self) -> None:
        """Re-read which journeys are live and hand their versions (and the versions that still
        have live runs) to the matcher."""
        with self.db.connect() as conn:
            rows = conn.execute(select(journeys.c.id, journeys.c.slug, journeys.c.status,
                                       journeys.c.live_version_id)).all()
            self.live = {r.id: _Live(r.id, r.slug, r.status, r.live_version_id) for r in rows}
            active = [r.id for r in rows if r.status == "live"]
            in_flight = conn.execute(select(journey_runs.c.version_id).distinct().where(and_(
                journey_runs.c.journey_id.in_(active), journey_runs.c.state.in_(LIVE_STATES)))).scalars().all()
            versions = {r.live_version_id for r in rows if r.status == "live" and r.live_version_id} | set(in_flight)
            self.matcher.load({str(v): self.program(conn, v).journey for v in sorted(versions)})

    def _journey_of_version(self, conn: Connection, version_id: int) -> _Live:
        journey_id = self.version_journeys.get(version_id)
        if journey_id is None:  # a version never changes its journey: ask once
            journey_id = conn.execute(select(journey_versions.c.journey_id)
                                      .where(journey_versions.c.id == version_id)).scalar_one()
            self.version_journeys[version_id] = journey_id
        return self.live[journey_id]

    # ------------------------------------------------------------------ intake

    def accept(self, messages: Sequence[Message]) -> int:
        """Store messages durably (resolving identities); how many were new."""
        now = self.clock.now()
        stored = 0
        with self.db.begin() as conn:
            for message in messages:
                if conn.execute(select(events.c.id).where(events.c.message_id == message.message_id)).first():
                    continue
                found = message.identities()
                if message.type == "alias" and message.previous_id:
                    found += self._previous_identities(conn, message.previous_id)
                profile_id = identity.resolve(conn, found, now)
                props = message.properties if message.type == "track" else message.traits
                conn.execute(insert(events).values(
                    message_id=message.message_id, profile_id=profile_id, type=message.type, name=message.event,
                    properties=dict(props), occurred_at=message.timestamp, received_at=now))
                stored += 1
        return stored

    def _previous_identities(self, conn: Connection, previous: str) -> list[tuple[str, str]]:
        """Segment's previousId may be an anonymous id or an older user id: whichever is known."""
        for kind in ("anonymous_id", "user_id"):
            known = conn.execute(select(identities.c.profile_id).where(and_(
                identities.c.kind == kind, identities.c.value == previous))).first()
            if known:
                return [(kind, previous)]
        return [("anonymous_id", previous)]

    # ------------------------------------------------------------------ applying events

    def process_events(self, limit: int = 1000) -> int:
        """Apply up to `limit` stored events, oldest first per user; how many."""
        now = self.clock.now()
        work = _Work()
        with self.db.begin() as conn:
            rows = conn.execute(select(events).where(events.c.processed_at.is_(None))
                                .order_by(events.c.id).limit(limit)).all()
            ordered = sorted(rows, key=lambda r: (r.profile_id, r.occurred_at, r.id))
            for row in ordered:
                self._apply_event(conn, row, now, work)
            if rows:
                conn.execute(update(events).where(events.c.id.in_([r.id for r in rows])).values(processed_at=now))
            counters.increment(conn, work.counters)
        self._publish_traces(work)
        return len(rows)

    def _apply_event(self, conn: Connection, row: Any, now: datetime, work: _Work) -> None:
        profile = _Profile.load(conn, row.profile_id)
        profile_id = profile.id
        history = _SqlHistory(conn, profile_id)
        props = dict(row.properties or {})
        if row.type == "identify":
            before = self.matcher.on_profile_change(Scope(dict(profile.user), now, history=history))
            profile.user.update(props)
            profile.changed = True
            after = self.matcher.on_profile_change(Scope(dict(profile.user), now, history=history))
            decisions = Decisions(enter=after.enter - before.enter, exit=after.exit, goals=after.goals)
            trigger = None
        elif row.type == "track":
            decisions = self.matcher.on_event(row.name, Scope(dict(profile.user), now, event=props, history=history))
            trigger = row
        else:
            return
        live_runs = {r.journey_id: r for r in conn.execute(select(journey_runs).where(and_(
            journey_runs.c.profile_id == profile_id, journey_runs.c.state.in_(LIVE_STATES))))}

        if decisions.goals:
            self._goals(conn, profile, decisions.goals, row.occurred_at, now, work)
        for key in sorted(decisions.exit):
            run = self._run_of_version(live_runs, conn, int(key))
            if run is not None:
                self._advance(conn, run, profile, ExitRequested("exit rule"), now, work)
        for key, step in sorted(decisions.waits):
            run = self._run_of_version(live_runs, conn, int(key))
            if run is not None and run.state == "waiting" and run.step_id == step:
                self._advance(conn, run, profile, EventArrived(step, row.occurred_at), now, work, event=props)
        for key in sorted(decisions.enter):
            self._enter(conn, profile, int(key), now, work, trigger)
        profile.save(conn, now)

    def _run_of_version(self, live_runs: Mapping[int, Any], conn: Connection, version_id: int) -> Any:
        run = live_runs.get(self._journey_of_version(conn, version_id).journey_id)
        if run is None or run.version_id != version_id:
            return None
        return self._reload_run(conn, run.id)

    def _reload_run(self, conn: Connection, run_id: int) -> Any:
        return conn.execute(select(journey_runs).where(journey_runs.c.id == run_id)).one()

    def _goals(self, conn: Connection, profile: _Profile, goals: Iterable[tuple[str, str]], occurred_at: datetime,
               now: datetime, work: _Work) -> None:
        """Credit each goal to the most recent run of its version (live or ended) that entered
        before the goal event and within the goal's window; one query for all of them."""
        versions = sorted({int(key) for key, _ in goals})
        latest: dict[int, Any] = {}
        for row in conn.execute(select(journey_runs).where(and_(
                journey_runs.c.profile_id == profile.id, journey_runs.c.version_id.in_(versions),
                journey_runs.c.entered_at <= occurred_at)).order_by(journey_runs.c.entered_at.desc())):
            latest.setdefault(row.version_id, row)
        for key, goal_name in sorted(goals):
            run = latest.get(int(key))
            goal = self.program(conn, int(key)).goals.get(goal_name) if run is not None else None
            if run is None or goal is None or occurred_at - run.entered_at > timedelta(seconds=goal.within_seconds):
                continue
            # reloaded: an earlier goal of this event may have moved the same run
            self._advance(conn, self._reload_run(conn, run.id), profile, GoalReached(goal_name, occurred_at), now, work)

    def _enter(self, conn: Connection, profile: _Profile, version_id: int, now: datetime, work: _Work,
               trigger: Any) -> bool:
        """Start a run if the journey is live and the re-entry policy allows; whether it did."""
        live = self._journey_of_version(conn, version_id)
        if live.status != "live" or live.version_id != version_id:
            return False
        program = self.program(conn, version_id)
        # One row answers both questions: the live run if there is one (after a merge it need not
        # be the newest), else the newest run.
        latest = conn.execute(select(journey_runs.c.entered_at, journey_runs.c.state).where(and_(
            journey_runs.c.profile_id == profile.id, journey_runs.c.journey_id == live.journey_id))
            .order_by(journey_runs.c.state.in_(LIVE_STATES).desc(), journey_runs.c.entered_at.desc())
            .limit(1)).first()
        last = latest.entered_at if latest else None
        has_live = latest is not None and latest.state in LIVE_STATES
        if not may_enter(program.journey.entry, last, has_live, now):
            return False
        run = conn.execute(insert(journey_runs).values(
            profile_id=profile.id, journey_id=live.journey_id, version_id=version_id, state="active",
            entered_at=now, updated_at=now, trigger_event_id=trigger.id if trigger is not None else None,
        ).returning(*journey_runs.c)).one()
        event = dict(trigger.properties or {}) if trigger is not None else None
        self._advance(conn, run, profile, Start(), now, work, event=event)
        return True

    def enter(self, slug: str, found: Sequence[tuple[str, str]]) -> bool:
        """Enter one user into an API-triggered journey; False if the policy says no."""
        now = self.clock.now()
        work = _Work()
        with self.db.begin() as conn:
            journey = next((j for j in self.live.values() if j.slug == slug), None)
            if journey is None or journey.version_id is None:
                raise JourneyNotFound(slug)
            profile = _Profile.load(conn, identity.resolve(conn, found, now))
            scope = Scope(dict(profile.user), now, history=_SqlHistory(conn, profile.id))
            entered = self.matcher.audience_holds(str(journey.version_id), scope) and self._enter(
                conn, profile, journey.version_id, now, work, None)
            profile.save(conn, now)
            counters.increment(conn, work.counters)
        self._publish_traces(work)
        return entered

    # ------------------------------------------------------------------ timers

    def next_timer_due(self) -> datetime | None:
        with self.db.connect() as conn:
            due: datetime | None = conn.execute(
                select(func.min(timers.c.due_at)).select_from(timers.join(journey_runs).join(
                    journeys, journeys.c.id == journey_runs.c.journey_id)).where(journeys.c.status == "live")
            ).scalar_one()
        return due

    def fire_due_timers(self, limit: int = 1000) -> int:
        """Fire up to `limit` due timers of live journeys, earliest first; how many."""
        now = self.clock.now()
        work = _Work()
        with self.db.begin() as conn:
            query = (select(timers.c.id, timers.c.run_id, timers.c.step_id)
                     .select_from(timers.join(journey_runs).join(journeys, journeys.c.id == journey_runs.c.journey_id))
                     .where(and_(timers.c.due_at <= now, journeys.c.status == "live"))
                     .order_by(timers.c.due_at, timers.c.id).limit(limit))
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=timers, skip_locked=True)
            due = conn.execute(query).all()
            for timer in due:
                conn.execute(delete(timers).where(timers.c.id == timer.id))
                run = self._reload_run(conn, timer.run_id)
                profile = _Profile.load(conn, run.profile_id)
                self._advance(conn, run, profile, TimerDue(timer.step_id), now, work,
                              event=self._trigger_event(conn, run))
                profile.save(conn, now)
            counters.increment(conn, work.counters)
        self._publish_traces(work)
        return len(due)

    def _trigger_event(self, conn: Connection, run: Any) -> dict[str, Any] | None:
        if run.trigger_event_id is None:
            return None
        props = conn.execute(select(events.c.properties).where(events.c.id == run.trigger_event_id)).scalar_one()
        return dict(props or {})

    # ------------------------------------------------------------------ one transition

    def _advance(self, conn: Connection, row: Any, profile: _Profile, given: Input, now: datetime, work: _Work,
                 event: Mapping[str, Any] | None = None) -> None:
        program = self.program(conn, row.version_id)
        converted = self._converted(conn, row.id) if isinstance(given, GoalReached) else frozenset[str]()
        run = Run(key=str(row.id), user_key=f"p{row.profile_id}", entered_at=row.entered_at, state=row.state,
                  step=row.step_id, waiting_since=row.waiting_since, deadline=row.wake_at,
                  results=dict(row.results or {}), arms=dict(row.split_arms or {}), converted=converted)
        if event is None and not isinstance(given, EventArrived):
            event = self._trigger_event(conn, row)
        scope = Scope(dict(profile.user), now, event=event, history=_SqlHistory(conn, profile.id))
        after, effects = advance(program, run, given, scope, _SqlPorts(conn, profile.id, row.id, now))
        self._commit(conn, row, program, after, effects, profile, now, work)

    def _converted(self, conn: Connection, run_id: int) -> frozenset[str]:
        return frozenset(conn.execute(select(conversions.c.goal).where(conversions.c.run_id == run_id)).scalars())

    def _commit(self, conn: Connection, row: Any, program: Program, after: Run, effects: Iterable[Effect],
                profile: _Profile, now: datetime, work: _Work) -> None:
        version = row.version_id
        done = conn.execute(update(journey_runs).where(and_(
            journey_runs.c.id == row.id, journey_runs.c.row_version == row.row_version)).values(
            state=after.state, step_id=after.step, wake_at=after.deadline, waiting_since=after.waiting_since,
            results=dict(after.results), split_arms=dict(after.arms), updated_at=now,
            row_version=row.row_version + 1))
        if done.rowcount != 1:
            raise RuntimeError(f"run {row.id} changed under this transaction")  # a bug, not a user error
        slug = self._journey_of_version(conn, version).slug
        for effect in effects:
            match effect:
                case ScheduleTimer(step=step, due_at=due_at):
                    conn.execute(delete(timers).where(timers.c.run_id == row.id))
                    conn.execute(insert(timers).values(run_id=row.id, due_at=due_at, kind=TIMER_KIND, step_id=step))
                case CancelTimers():
                    conn.execute(delete(timers).where(timers.c.run_id == row.id))
                case Outbound():
                    self._outbound(conn, row, effect, now)
                case ProfileUpdate(field=path, op=op, value=value):
                    profile.user = apply_update(profile.user, path, op, value)
                    profile.changed = True
                case TagUpdate(action=action, tag=tag):
                    profile.user = apply_tag(profile.user, action, tag)
                    profile.changed = True
                case Conversion(goal=goal, occurred_at=occurred_at):
                    conn.execute(insert(conversions).values(run_id=row.id, goal=goal, occurred_at=occurred_at))
                case Trace():
                    work.traces.append(TraceRecord(now, profile.id, slug, effect))
                    metric = _metric(effect)
                    if metric is not None:
                        work.counters.append((version, metric[0], metric[1], now, 1))

    def _outbound(self, conn: Connection, row: Any, effect: Outbound, now: datetime) -> None:
        insert_ = (postgresql.insert(outbox) if conn.dialect.name == "postgresql" else sqlite.insert(outbox))
        conn.execute(insert_.values(
            idempotency_key=effect.key, run_id=row.id, profile_id=row.profile_id, journey_id=row.journey_id,
            step_id=effect.step, channel=effect.channel, payload=dict(effect.payload), send_at=effect.send_at,
            status=effect.status, last_error=effect.reason, created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=["idempotency_key"]))

    def _publish_traces(self, work: _Work) -> None:
        if self.observer is not None:
            for record in work.traces:
                self.observer(record)

    # ------------------------------------------------------------------ schedules

    def schedule_triggers(self) -> list[tuple[int, str]]:
        """(version id, cron) of every live journey's schedule triggers."""
        found = []
        for live in self.live.values():
            if live.status == "live" and live.version_id is not None:
                program = self.programs.get(live.version_id)
                if program is None:
                    continue
                found += [(live.version_id, t.cron) for t in program.journey.triggers
                          if isinstance(t, dm.ScheduleTrigger)]
        return found

    def run_schedule(self, version_id: int, batch: int = 500) -> int:
        """Enter everyone whose profile matches the audience into a scheduled journey; how many."""
        entered = 0
        last_id = 0
        while True:
            now = self.clock.now()
            work = _Work()
            with self.db.begin() as conn:
                ids = conn.execute(select(profiles.c.id).where(and_(
                    profiles.c.merged_into.is_(None), profiles.c.id > last_id)).order_by(profiles.c.id).limit(batch)
                ).scalars().all()
                for profile_id in ids:
                    profile = _Profile.load(conn, profile_id)
                    scope = Scope(dict(profile.user), now, history=_SqlHistory(conn, profile_id))
                    if self.matcher.audience_holds(str(version_id), scope) and self._enter(
                            conn, profile, version_id, now, work, None):
                        entered += 1
                        profile.save(conn, now)
                counters.increment(conn, work.counters)
            self._publish_traces(work)
            if len(ids) < batch:
                return entered
            last_id = ids[-1]


def _metric(trace: Trace) -> tuple[str, str] | None:
    """Which step counter a trace adds to, if any."""
    if trace.kind == "moved" and trace.step and not trace.detail:
        return trace.step, "entered"
    if trace.kind == "entered":
        return JOURNEY_LEVEL, "entered"
    if trace.kind in ("exited", "completed", "converted"):
        return JOURNEY_LEVEL, trace.kind if trace.kind != "converted" else f"converted:{trace.detail}"
    if trace.kind == "suppressed" and trace.step:
        return trace.step, "suppressed"
    if trace.kind == "split" and trace.step:
        return trace.step, f"arm:{trace.detail.split(' ')[0]}"
    return None


__all__ = ["JourneyNotFound", "Runtime", "TraceRecord", "slugify"]
