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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Engine, Integer, and_, cast, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dsl import compile_source
from dsl import model as dm
from dsl.graph import CompiledJourney
from dsl.reads import changed_fields
from storage import alerts, counters, coupons, writer
from storage.counters import JOURNEY_LEVEL  # re-exported: callers import it from here
from storage.tables import journey_runs, journey_versions, journeys, profiles, schedule_ticks, timers

from . import groups, identity, intake
from .clock import Clock
from .conditions import ConditionIndex
from .machine import (
    LIVE_STATES,
    CancelDeferred,
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
from .messages import EVENT_TYPES, Message
from .schedules import EVERYONE, Members, Schedule, ZoneValue, due_tick, next_tick, schedule_of, tick_members
from .scope import Scope
from .timing import known_zone
from .unit_of_work import Profile, RunRow, TraceRecord, UnitHistory, UnitOfWork, UnitPorts, driver

MAX_PARTITIONS = 32_767  # a partition's lock key is count * 65536 + index, within PostgreSQL's int4
PROFILE_TYPES = frozenset({"identify", "group"})  # messages that change the profile, not events
REDEMPTION_EVENT = "coupon_redeemed"  # {code, pool?}: marks the code used, in the batch's transaction
SCHEDULE_CATCH_UP = timedelta(days=1)  # how late a missed schedule tick may still fire
ZONE_VALUES_TTL = 60.0  # seconds a runtime trusts its list of the profiles' zones (`_zone_values`)


class JourneyNotFound(LookupError):
    pass


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "journey"


# --------------------------------------------------------------------------- the runtime


@dataclass
class _Live:
    journey_id: int
    slug: str
    status: str
    version_id: int | None  # the version new users enter


class Runtime:
    def __init__(self, db: Engine, clock: Clock, matcher: Matcher | None = None,
                 observer: Callable[[TraceRecord], None] | None = None, default_zone: str = "UTC",
                 forced_arms: Mapping[str, int] | None = None) -> None:
        if known_zone(default_zone) is None:
            raise ValueError(f"unknown time zone {default_zone!r}: use a tz database name such as 'Asia/Shanghai'")
        self.db = db
        self.default_zone = default_zone  # for users and journeys without a (known) zone
        self.writer = writer(db)  # for transactions that write (BEGIN IMMEDIATE on SQLite)
        self.clock = clock
        self.matcher = matcher or CompiledMatcher()
        self.observer = observer
        self.forced_arms = forced_arms  # split id -> arm index, for every journey: simulations only
        self.on_accepted: Callable[[frozenset[int]], None] | None = None  # after accept commits: whose events
        self.programs: dict[int, Program] = {}  # version id -> program, loaded on demand
        self.live: dict[int, _Live] = {}  # journey id -> its state
        self.version_journeys: dict[int, int] = {}  # version id -> journey id
        self.conditions = ConditionIndex()
        self._zones: tuple[float, list[ZoneValue]] | None = None  # (monotonic time, values): `_zone_values`
        self.reload()

    # ------------------------------------------------------------------ journeys

    def publish(self, source: str, slug: str | None = None, published_by: str | None = None) -> int:
        """Compile and publish a new version of a journey (creating it if new); its id.
        `published_by` names who did it ("user:<name>", "key:<name>"), shown in version lists."""
        compiled = compile_source(source)
        now = self.clock.now()
        slug = slug or slugify(compiled.name)
        with self.writer.begin() as conn:
            journey_id = conn.execute(select(journeys.c.id).where(journeys.c.slug == slug)).scalar_one_or_none()
            if journey_id is None:
                journey_id = conn.execute(insert(journeys).values(
                    slug=slug, name=compiled.name, status="live", created_at=now, updated_at=now
                ).returning(journeys.c.id)).scalar_one()
            number = conn.execute(select(func.coalesce(func.max(journey_versions.c.version), 0))
                                  .where(journey_versions.c.journey_id == journey_id)).scalar_one() + 1
            version_id = conn.execute(insert(journey_versions).values(
                journey_id=journey_id, version=number, source=source, graph=compiled.to_dict(),
                created_at=now, published_at=now, published_by=published_by,
            ).returning(journey_versions.c.id)).scalar_one()
            conn.execute(update(journeys).where(journeys.c.id == journey_id).values(
                live_version_id=version_id, name=compiled.name, status="live", updated_at=now))
        self.reload()
        return int(version_id)

    def set_status(self, slug: str, status: str) -> None:
        """Pause, resume (`live`) or archive a journey."""
        with self.writer.begin() as conn:
            done = conn.execute(update(journeys).where(journeys.c.slug == slug).values(
                status=status, updated_at=self.clock.now()))
            if done.rowcount == 0:
                raise JourneyNotFound(slug)
        self.reload()

    def program(self, conn: Connection, version_id: int) -> Program:
        program = self.programs.get(version_id)
        if program is None:
            row = conn.execute(select(journey_versions.c.source, journeys.c.slug)
                               .join(journeys, journeys.c.id == journey_versions.c.journey_id)
                               .where(journey_versions.c.id == version_id)).one()
            # Keyed by the journey's slug, not the version: a split keeps each user in their
            # branch across versions and machines.
            program = Program(row.slug, compile_source(row.source), self.default_zone, self.forced_arms)
            self.programs[version_id] = program
        return program

    def close(self) -> None:
        """Release the rules backend (durable-rules keeps a child process). The database engine
        is the caller's, and stays open."""
        self.matcher.close()

    def reload(self) -> None:
        """Re-read which journeys are live and hand their versions (and the versions that still
        have live runs) to the matcher."""
        with self.db.connect() as conn:
            rows = conn.execute(select(journeys.c.id, journeys.c.slug, journeys.c.status,
                                       journeys.c.live_version_id).order_by(journeys.c.id)).all()
            self.live = {r.id: _Live(r.id, r.slug, r.status, r.live_version_id) for r in rows}
            active = [r.id for r in rows if r.status == "live"]
            in_flight = conn.execute(select(journey_runs.c.version_id).distinct().where(and_(
                journey_runs.c.journey_id.in_(active), journey_runs.c.state.in_(LIVE_STATES)))).scalars().all()
            versions = {r.live_version_id for r in rows if r.status == "live" and r.live_version_id} | set(in_flight)
            loaded = {str(v): self.program(conn, v).journey for v in sorted(versions)}
            self.matcher.load(loaded)
            self.conditions = ConditionIndex(loaded)

    def _journey_of_version(self, conn: Connection, version_id: int) -> _Live:
        journey_id = self.version_journeys.get(version_id)
        if journey_id is None:  # a version never changes its journey: ask once
            journey_id = conn.execute(select(journey_versions.c.journey_id)
                                      .where(journey_versions.c.id == version_id)).scalar_one()
            self.version_journeys[version_id] = journey_id
        return self.live[journey_id]

    # ------------------------------------------------------------------ intake

    def accept(self, messages: Sequence[Message]) -> int:
        """Store messages durably (resolving identities); how many were new. Once they are
        committed, `on_accepted` (when set) hears whose events they were, so that the workers
        owning those profiles' partitions can be woken at once rather than at their next sweep
        (a spurious call, for an event a concurrent acceptor stored first, costs an idle wake)."""
        self._zones = None  # new profiles (with no zone yet) may be among them
        with self.writer.begin() as conn:
            stored = intake.store(conn, messages, self.clock.now())
        if self.on_accepted is not None and stored.profile_ids:
            self.on_accepted(stored.profile_ids)
        return stored.new

    # ------------------------------------------------------------------ applying events

    def process_events(self, limit: int = 1000, partition: tuple[int, int] = (0, 1)) -> int:
        """Apply up to `limit` stored events of one partition of the users, oldest first per
        user; how many. Partition (k, n) holds the users whose profile id is k modulo n.

        Events of one user must be applied in order, so a partition has one consumer at a time:
        on PostgreSQL a transaction-scoped advisory lock per partition (a second worker on the
        same partition gets 0 at once and tries later); on SQLite the single writer already
        serialises everything.
        """
        index, count = partition
        if not 0 <= index < count <= MAX_PARTITIONS:
            raise ValueError(f"partition {index} of {count}: the index must be in 0..{count - 1}, "
                             f"and there are at most {MAX_PARTITIONS} partitions")
        with self.writer.begin() as conn:
            if conn.dialect.name == "postgresql" and not conn.execute(select(func.pg_try_advisory_xact_lock(
                    partition_lock_space(), cast(count * 65_536 + index, Integer)))).scalar():
                return 0
            d = driver(conn)
            if count > 1:
                found = conn.exec_driver_sql(_PG_PARTITION_EVENTS if d.postgresql else _PARTITION_EVENTS,
                                             (count, index, limit)).all()
            else:
                found = conn.exec_driver_sql(d.sql(_UNPROCESSED_EVENTS), (limit,)).all()
            if not found:
                return 0
            rows = [_Event(event_id, profile_id, type_, name, d.decoded(properties), d.moment(occurred_at))
                    for event_id, profile_id, type_, name, properties, occurred_at in found]
            unit = UnitOfWork(conn, self.clock.now())
            unit.event_props.update((r.id, r.properties or {}) for r in rows)  # decoded once, for `count of` too
            unit.load_users(r.profile_id for r in rows)
            for row in sorted(rows, key=lambda r: (unit.survivor(r.profile_id), r.occurred_at, r.id)):
                self._apply_event(unit, row)
            unit.flush()
            unit.mark_processed([r.id for r in rows])
        self._publish_traces(unit)
        return len(rows)

    def _apply_event(self, unit: UnitOfWork, row: Any) -> None:
        profile = unit.profile(row.profile_id)
        unit.begin_input()
        props = dict(row.properties or {})
        if row.type in PROFILE_TYPES:
            before = dict(profile.user)
            profile.user.update(props if row.type == "identify" else _group_traits(profile.user, props))
            profile.changed = True
            self._check_zone(unit, profile, before)
            decisions = self._profile_decisions(unit, profile, before)
            trigger = None
        elif row.type == identity.MERGE_TYPE:
            before = _merged_profile_before(props)
            decisions = self._profile_decisions(unit, profile, before)
            trigger = None
        elif row.type in EVENT_TYPES:
            if row.name == REDEMPTION_EVENT and isinstance(props.get("code"), str):
                pool = props.get("pool")
                coupons.redeem(unit.conn, props["code"], row.occurred_at, pool if isinstance(pool, str) else None)
            decisions = self._on_event(unit, profile, row.name, Scope(dict(profile.user), unit.now, event=props,
                                                                      history=UnitHistory(unit, profile.id)))
            counting = self.conditions.counting(row.name)
            if counting:
                decisions = replace(decisions, enter=decisions.enter | self._counted_entries(unit, profile, row,
                                                                                             counting))
            trigger = row
        else:
            return
        self._decide(unit, profile, decisions, row.occurred_at, trigger, props)

    def _decide(self, unit: UnitOfWork, profile: Profile, decisions: Decisions, occurred_at: datetime,
                trigger: Any, event: Mapping[str, Any] | None) -> None:
        """Carry out what one input decided, in the documented order: goals, exits, waits, entries."""
        if decisions.goals:
            self._goals(unit, profile, decisions.goals, occurred_at)
        # Journeys in the order of their version ids (publication order), compared as numbers:
        # as text, "10" would come before "9", and which journey messages first decides what a
        # frequency cap lets through.
        for key in sorted(decisions.exit, key=int):
            self._exit(unit, profile, int(key))
        for key, step in sorted(decisions.waits, key=_by_version):
            run = self._run_of_version(unit, profile, int(key))
            if run is not None and run.state == "waiting" and run.step_id == step:
                self._advance(unit, run, profile, EventArrived(step, occurred_at), event=event)
        for key in sorted(decisions.enter, key=int):
            self._enter(unit, profile, int(key), trigger)

    def _exit(self, unit: UnitOfWork, profile: Profile, version_id: int) -> None:
        """An exit rule holds: end the user's live run of the version, or, when it has ended
        already, cancel the messages its last steps still hold back for quiet hours."""
        run = self._run_of_version(unit, profile, version_id)
        if run is not None:
            self._advance(unit, run, profile, ExitRequested("exit rule"))
            return
        for run_id in unit.holding_runs(profile.id):
            held = unit.run(run_id)
            if held.version_id == version_id:
                self._advance(unit, held, profile, ExitRequested("exit rule"))

    def _profile_decisions(self, unit: UnitOfWork, profile: Profile, before: Mapping[str, Any]) -> Decisions:
        """What a change of the profile from `before` to now decides: the `trigger when`s that
        became true, the `exit when`s and `when` goals that hold, among the journeys whose
        conditions read a changed field. A change no condition reads costs one set lookup."""
        changed = changed_fields(before, profile.user)
        if "timezone" in changed:
            self._zones = None  # the schedules' list of zones may have changed
        concerned = self.conditions.concerned(changed)
        if not concerned:
            return Decisions()
        history = UnitHistory(unit, profile.id)
        was = self._on_profile_change(unit, profile, Scope(dict(before), unit.now, history=history))
        now = self._on_profile_change(unit, profile, Scope(dict(profile.user), unit.now, history=history))
        return Decisions(enter=(now.enter - was.enter) & concerned, exit=now.exit & concerned,
                         goals=frozenset(g for g in now.goals if g[0] in concerned))

    def _counted_entries(self, unit: UnitOfWork, profile: Profile, row: Any,
                         counting: frozenset[str]) -> frozenset[str]:
        """The `trigger when`s that counting this event made true (`count of "purchase" ... >= 6`
        on the sixth purchase): evaluated without the event, then with it."""
        user = dict(profile.user)
        was = self._on_profile_change(unit, profile, Scope(user, unit.now, history=UnitHistory(unit, profile.id,
                                                                                                row.id)))
        now = self._on_profile_change(unit, profile, Scope(user, unit.now, history=UnitHistory(unit, profile.id)))
        return (now.enter - was.enter) & counting

    def _on_event(self, unit: UnitOfWork, profile: Profile, name: str, scope: Scope) -> Decisions:
        """The matcher's answer, pre-filtered by `_closed` where the backend takes it (the compiled
        one's own method, not a subclass's override, which may not)."""
        matcher = self.matcher
        if isinstance(matcher, CompiledMatcher) and type(matcher).on_event is CompiledMatcher.on_event:
            return matcher.on_event(name, scope, self._closed(unit, profile))
        return matcher.on_event(name, scope)

    def _on_profile_change(self, unit: UnitOfWork, profile: Profile, scope: Scope) -> Decisions:
        matcher = self.matcher
        if isinstance(matcher, CompiledMatcher) and \
                type(matcher).on_profile_change is CompiledMatcher.on_profile_change:
            return matcher.on_profile_change(scope, self._closed(unit, profile))
        return matcher.on_profile_change(scope)

    def _closed(self, unit: UnitOfWork, profile: Profile) -> Callable[[str], bool]:
        """Which journeys this input can no longer enter the user into, whatever it goes on to do:
        the matcher skips their trigger and audience checks (the issue-18 profile: 15% of apply
        time went on audiences of journeys the user could not enter). Only what cannot change
        before `_enter` asks counts: a journey not live or not at this version, one this input
        has entered already, an entry within the re-entry policy's period (the newest entry
        only moves forward). A live run alone does not close `entry always`: an exit or a `wait
        for` earlier in the same input may end it first, and the entry then goes ahead. Durable
        rules evaluates everything, and `_enter` refuses the same entries there."""
        def closed(key: str) -> bool:
            version_id = int(key)
            live = self._journey_of_version(unit.conn, version_id)
            if live.status != "live" or live.version_id != version_id:
                return True
            if unit.entered_in_this_input(profile.id, live.journey_id):
                return True
            last = unit.last_entered.get((profile.id, live.journey_id))
            if last is None:
                return False
            entry = self.program(unit.conn, version_id).journey.entry
            return entry.mode != "always" and not may_enter(entry, last, False, unit.now)
        return closed

    def _changed(self, unit: UnitOfWork, profile: Profile, before: Mapping[str, Any]) -> None:
        """A step changed the profile (an `update`, a tag): re-evaluate the conditions that read
        what changed, in this transaction. Entries caused this way are made once per journey
        per input (`UnitOfWork.entered_in_this_input`), so journeys whose updates trigger each other, or
        one that triggers itself, stop after one pass each instead of looping. The user's runs and
        newest entries are loaded first: `_closed` reads them straight from the unit, and a timer
        batch leaves them to this moment (`UnitOfWork.expect_users`)."""
        unit.load_users([profile.id])
        decisions = self._profile_decisions(unit, profile, before)
        if decisions != Decisions():
            self._decide(unit, profile, decisions, unit.now, None, None)

    def _check_zone(self, unit: UnitOfWork, profile: Profile, before: Mapping[str, Any]) -> None:
        """A profile's zone set to a name the tz database does not know is used as a missing one
        would be (the journey's zone, then the installation's); say so once, when it is set."""
        name = profile.user.get("timezone")
        if name != before.get("timezone") and name not in (None, "") and known_zone(name) is None:
            alerts.raise_alert(unit.conn, alerts.UNKNOWN_TIME_ZONE, f"profile:{profile.id}",
                               f"profile {profile.id} has the unknown time zone {str(name)[:80]!r}; its waits and "
                               f"quiet hours use the journey's zone, then {self.default_zone}", unit.now)

    def _run_of_version(self, unit: UnitOfWork, profile: Profile, version_id: int) -> RunRow | None:
        run = unit.live_run(profile.id, self._journey_of_version(unit.conn, version_id).journey_id)
        return run if run is not None and run.version_id == version_id else None

    def _goals(self, unit: UnitOfWork, profile: Profile, goals: Iterable[tuple[str, str]],
               occurred_at: datetime) -> None:
        """Credit each goal to the most recent run of its version (live or ended) that entered
        before the goal event and within the goal's window."""
        latest = unit.latest_runs(profile.id, sorted({int(key) for key, _ in goals}), occurred_at)
        for key, goal_name in sorted(goals, key=_by_version):
            run = latest.get(int(key))
            goal = self.program(unit.conn, int(key)).goals.get(goal_name) if run is not None else None
            if run is None or goal is None or occurred_at - run.entered_at > timedelta(seconds=goal.within_seconds):
                continue
            self._advance(unit, run, profile, GoalReached(goal_name, occurred_at))

    def _enter(self, unit: UnitOfWork, profile: Profile, version_id: int, trigger: Any) -> bool:
        """Start a run if the journey is live and the re-entry policy allows; whether it did."""
        live = self._journey_of_version(unit.conn, version_id)
        if live.status != "live" or live.version_id != version_id:
            return False
        if unit.entered_in_this_input(profile.id, live.journey_id):
            return False
        program = self.program(unit.conn, version_id)
        has_live = unit.live_run(profile.id, live.journey_id) is not None
        last = unit.last_entered.get((profile.id, live.journey_id))
        if not may_enter(program.journey.entry, last, has_live, unit.now):
            return False
        run = unit.start_run(profile.id, live.journey_id, version_id, trigger)
        self._advance(unit, run, profile, Start())
        return True

    def enter(self, slug: str, found: Sequence[tuple[str, str]]) -> bool:
        """Enter one user into an API-triggered journey; False if the policy says no."""
        with self.writer.begin() as conn:
            journey = next((j for j in self.live.values() if j.slug == slug), None)
            if journey is None or journey.version_id is None:
                raise JourneyNotFound(slug)
            unit = UnitOfWork(conn, self.clock.now())
            profile = unit.profile(identity.resolve(conn, found, unit.now))
            scope = Scope(dict(profile.user), unit.now, history=UnitHistory(unit, profile.id))
            entered = self.matcher.audience_holds(str(journey.version_id), scope) and self._enter(
                unit, profile, journey.version_id, None)
            unit.flush()
        self._publish_traces(unit)
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
        with self.writer.begin() as conn:
            unit = UnitOfWork(conn, self.clock.now())
            d = driver(conn)
            due = conn.exec_driver_sql(d.sql(_PG_DUE_TIMERS if d.postgresql else _DUE_TIMERS),
                                       (d.when(unit.now), "live", limit)).all()
            unit.load_runs(run_id for _, run_id, _, _ in due)
            # The users' other runs only when a timer's steps change a profile (`_changed`).
            unit.expect_users([unit.runs[run_id].profile_id for _, run_id, _, _ in due])
            unit.load_triggers(unit.runs.values())
            for _, run_id, step_id, payload in due:
                unit.begin_input()
                unit.set_timer(run_id, None)
                run = unit.runs[run_id]
                self._advance(unit, run, unit.profile(run.profile_id), TimerDue(step_id, d.decoded(payload) or None))
            unit.flush()
        self._publish_traces(unit)
        return len(due)

    # ------------------------------------------------------------------ one transition

    def _advance(self, unit: UnitOfWork, row: RunRow, profile: Profile, given: Input,
                 event: Mapping[str, Any] | None = None) -> None:
        program = self.program(unit.conn, row.version_id)
        converted = frozenset(unit.converted(row)) if isinstance(given, GoalReached) else _NO_GOALS
        run = Run(key=str(row.id), user_key=profile.split_key, entered_at=row.entered_at, state=row.state,
                  step=row.step_id, waiting_since=row.waiting_since, deadline=row.wake_at,
                  results=row.results, arms=row.split_arms, converted=converted)
        if event is None and isinstance(given, Start | TimerDue):  # the inputs that run steps
            event = unit.trigger_event(row)
        scope = Scope(dict(profile.user), unit.now, event=event, history=UnitHistory(unit, profile.id))
        after, effects = advance(program, run, given, scope, UnitPorts(unit, profile.id, row.id))
        # `_commit` replaces `profile.user` for each update or tag (`apply_update` and `apply_tag`
        # copy, never change a profile in place), so the dict as it was is what they changed.
        before = profile.user
        self._commit(unit, row, run, after, effects, profile)
        if profile.user is not before:
            self._changed(unit, profile, before)

    def _commit(self, unit: UnitOfWork, row: RunRow, before: Run, after: Run, effects: Iterable[Effect],
                profile: Profile) -> None:
        unit.counters += counters.moves(row.version_id, (before.state, before.step), (after.state, after.step),
                                        unit.now)
        row.state, row.step_id, row.wake_at, row.waiting_since = after.state, after.step, after.deadline, \
            after.waiting_since
        row.results, row.split_arms = dict(after.results), dict(after.arms)
        row.dirty = True
        if not row.live:
            unit.ended(row)
        slug = self._journey_of_version(unit.conn, row.version_id).slug
        now = unit.now
        for effect in effects:
            match effect:  # the commonest effects first: a timer's transition emits four or five
                case Trace():
                    unit.traces.append(TraceRecord(now, profile.id, slug, effect))
                    found = _metrics(effect, before, after)
                    if found:
                        unit.counters += [(row.version_id, step, metric, now, 1) for step, metric in found]
                case Outbound():
                    unit.add_outbox({
                        "idempotency_key": effect.key, "run_id": row.id, "profile_id": row.profile_id,
                        "journey_id": row.journey_id, "step_id": effect.step, "channel": effect.channel,
                        "payload": dict(effect.payload), "send_at": effect.send_at, "status": effect.status,
                        "last_error": effect.reason, "created_at": now, "updated_at": now})
                case ScheduleTimer(step=step, due_at=due_at):
                    unit.set_timer(row.id, (step, due_at))
                case CancelTimers():
                    unit.set_timer(row.id, None)
                case CancelDeferred(reason=reason):
                    for step in unit.cancel_held(row.id, f"cancelled: {reason}"):
                        unit.counters.append((row.version_id, step, counters.CANCELLED, now, 1))
                        unit.traces.append(TraceRecord(now, profile.id, slug, Trace("cancelled", step, reason)))
                case ProfileUpdate(field=path, op=op, value=value):
                    profile.user = apply_update(profile.user, path, op, value)
                    profile.changed = True
                case TagUpdate(action=action, tag=tag):
                    profile.user = apply_tag(profile.user, action, tag)
                    profile.changed = True
                case Conversion(goal=goal, occurred_at=occurred_at):
                    unit.add_conversion(row, goal, occurred_at)

    def _publish_traces(self, unit: UnitOfWork) -> None:
        if self.observer is not None:
            for record in unit.traces:
                self.observer(record)

    # ------------------------------------------------------------------ schedules

    def schedule_triggers(self) -> list[tuple[int, str]]:
        """(version id, cron) of every live journey's schedule triggers."""
        return [(version_id, trigger.cron) for version_id, trigger, _ in self._schedule_triggers()]

    def _schedule_triggers(self) -> list[tuple[int, dm.ScheduleTrigger, CompiledJourney]]:
        """Each schedule trigger of the version new users enter, of every live journey."""
        found = []
        for live in self.live.values():
            version_id = live.version_id
            if live.status != "live" or version_id is None or version_id not in self.programs:
                continue
            journey = self.programs[version_id].journey
            found += [(version_id, t, journey) for t in journey.triggers if isinstance(t, dm.ScheduleTrigger)]
        return found

    def _schedules(self) -> dict[int, list[Schedule]]:
        """Each live version's schedule triggers, parsed, each knowing whose clock it reads and
        the fallback zone (the journey's `timezone`, then the installation's default). The
        triggers of one version share its ticks: a tick enters whom any of them selects."""
        found: dict[int, list[Schedule]] = {}
        for version_id, trigger, journey in self._schedule_triggers():
            found.setdefault(version_id, []).append(schedule_of(
                trigger.cron, trigger.zone or dm.DEFAULT_SCHEDULE_ZONE, journey.timezone, self.default_zone))
        return found

    def next_schedule_due(self) -> datetime | None:
        """When the next schedule tick of a live journey is due (an unfinished one counts as due)."""
        found, now = self._schedules(), self.clock.now()
        with self.db.connect() as conn:
            values = self._zone_values(conn, [s for group in found.values() for s in group])
            upcoming = [self._next_tick(conn, version_id, group, values, now) for version_id, group in found.items()]
        return min((t for t in upcoming if t is not None), default=None)

    def run_due_schedules(self, batch: int = 500) -> int:
        """Run every schedule tick that is due, resuming any a crash cut short; entries made.

        A tick missed while nothing ran (the server was down) fires once, late: of one zone's
        missed fires only the most recent fires, within SCHEDULE_CATCH_UP of it: a daily
        journey must not send a week of birthdays at once when the server comes back. The late
        ticks of different zones run one after the other, in time order.
        """
        entered, now, found = 0, self.clock.now(), self._schedules()
        with self.db.connect() as conn:  # one look at the zones for every journey's ticks
            values = self._zone_values(conn, [s for group in found.values() for s in group])
        for version_id, group in found.items():
            done: datetime | None = None
            while (due := self._due_tick(version_id, group, values, now)) is not None and due[0] != done:
                entered += self._run_tick(version_id, due[0], batch, due[1])
                done = due[0]
        return entered

    def run_schedule(self, version_id: int, batch: int = 500) -> int:
        """Run a scheduled journey's pass now, over everyone, as if a tick were due at this moment."""
        return self._run_tick(version_id, self.clock.now(), batch, EVERYONE)

    def _zone_values(self, conn: Connection, found: Iterable[Schedule]) -> list[ZoneValue]:
        """The distinct raw `profiles.timezone` values (NULL and unknown names included), when a
        trigger reads users' own zones: the zones a tick can be for.

        The DISTINCT reads the whole profiles table, so the answer is kept for ZONE_VALUES_TTL
        seconds, and dropped at once when this runtime changes a profile's zone (`_profile_decisions`)
        or stores messages that may create profiles (`accept`). A zone no profile had, set by
        another process, is seen within the TTL."""
        if not any(s.per_user for s in found):
            return []
        cached = self._zones
        if cached is not None and time.monotonic() - cached[0] < ZONE_VALUES_TTL:
            return cached[1]
        query = select(profiles.c.timezone).where(profiles.c.merged_into.is_(None)).distinct()
        values = list(conn.execute(query).scalars())
        self._zones = (time.monotonic(), values)
        return values

    def _last_tick(self, conn: Connection, version_id: int) -> tuple[datetime, bool]:
        """The due time of the trigger's latest tick and whether it is finished; the version's
        publication (as a finished tick) when it has none."""
        row = conn.execute(select(schedule_ticks.c.due_at, schedule_ticks.c.finished_at)
                           .where(schedule_ticks.c.version_id == version_id)
                           .order_by(schedule_ticks.c.due_at.desc()).limit(1)).first()
        if row is not None:
            return row.due_at, row.finished_at is not None
        published = conn.execute(select(func.coalesce(journey_versions.c.published_at, journey_versions.c.created_at))
                                 .where(journey_versions.c.id == version_id)).scalar_one()
        return published, True

    def _next_tick(self, conn: Connection, version_id: int, found: list[Schedule], values: list[ZoneValue],
                   now: datetime) -> datetime | None:
        """The next tick; not one older than SCHEDULE_CATCH_UP, which would never run and so
        would stay due forever."""
        last, finished = self._last_tick(conn, version_id)
        return last if not finished else next_tick(found, values, max(last, now - SCHEDULE_CATCH_UP))

    def _due_tick(self, version_id: int, found: list[Schedule], values: list[ZoneValue],
                  now: datetime) -> tuple[datetime, Members] | None:
        """The tick to run now and whom it is for: an unfinished one first (cut short: resume it)."""
        with self.db.connect() as conn:
            last, finished = self._last_tick(conn, version_id)
        due = due_tick(found, values, last, now, SCHEDULE_CATCH_UP) if finished else last
        return None if due is None else (due, tick_members(found, values, due, now))

    @staticmethod
    def _selects(who: Members) -> list[ColumnElement[bool]]:
        """The tick's profiles by their raw zone value, in SQL: a tick for Shanghai's 09:30
        reads no European profile. NULL and unknown names are among the values when the
        fallback zone fires."""
        if who.everyone:
            return []
        chosen = profiles.c.timezone.in_(sorted(v for v in who.values if v is not None))
        return [or_(chosen, profiles.c.timezone.is_(None)) if None in who.values else chosen]

    def _run_tick(self, version_id: int, due_at: datetime, batch: int, who: Members) -> int:
        """One pass over the tick's profiles, a batch per transaction; the tick's cursor moves
        with each batch's entries, so the pass resumes after a crash and never repeats."""
        insert_ = postgresql.insert if self.db.dialect.name == "postgresql" else sqlite.insert
        with self.writer.begin() as conn:
            conn.execute(insert_(schedule_ticks).values(version_id=version_id, due_at=due_at,
                                                        started_at=self.clock.now()).on_conflict_do_nothing())
        entered = 0
        while True:
            with self.writer.begin() as conn:
                query = select(schedule_ticks).where(and_(schedule_ticks.c.version_id == version_id,
                                                          schedule_ticks.c.due_at == due_at))
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()  # two processes never run one batch twice
                tick = conn.execute(query).one()
                if tick.finished_at is not None:
                    return entered
                unit = UnitOfWork(conn, self.clock.now())
                ids = conn.execute(select(profiles.c.id).where(
                    profiles.c.merged_into.is_(None), profiles.c.id > tick.cursor, *self._selects(who))
                    .order_by(profiles.c.id).limit(batch)).scalars().all()
                unit.load_users(ids)
                here = 0
                for profile_id in ids:
                    profile = unit.profile(profile_id)
                    scope = Scope(dict(profile.user), unit.now, history=UnitHistory(unit, profile_id))
                    if self.matcher.audience_holds(str(version_id), scope) and self._enter(
                            unit, profile, version_id, None):
                        here += 1
                unit.flush()
                conn.execute(update(schedule_ticks).where(and_(
                    schedule_ticks.c.version_id == version_id, schedule_ticks.c.due_at == due_at)).values(
                    cursor=ids[-1] if ids else tick.cursor, entered=schedule_ticks.c.entered + here,
                    finished_at=unit.now if len(ids) < batch else None))
            entered += here
            self._publish_traces(unit)


def partition_lock_space() -> ColumnElement[int]:
    """The first key of the partitions' advisory locks: a hash of the schema, because advisory
    locks belong to the whole database, and installations in separate schemas of one database
    (tests, benchmarks, tenants) must not hold each other's partitions."""
    return func.hashtext(func.concat(func.current_schema(), ":journeyflow-events"))


class _Event(NamedTuple):
    """An unprocessed event as the apply path reads it (`_UNPROCESSED_EVENTS`)."""

    id: int
    profile_id: int
    type: str
    name: str | None
    properties: dict[str, Any] | None
    occurred_at: datetime


# A batch of unprocessed events, oldest first, as SQL text for the driver, for the reason below:
# through SQLAlchemy each row's three instants and its JSON went through their column types one
# value at a time. Partitioned: `profile_id % count = index` (`%%` is psycopg's literal `%`).
_EVENT_COLUMNS = ("SELECT events.id, events.profile_id, events.type, events.name, events.properties, "
                  "events.occurred_at FROM events WHERE events.processed_at IS NULL")
_UNPROCESSED_EVENTS = _EVENT_COLUMNS + " ORDER BY events.id LIMIT ?"
_PARTITION_EVENTS = _EVENT_COLUMNS + " AND events.profile_id % ? = ? ORDER BY events.id LIMIT ?"
_PG_PARTITION_EVENTS = _EVENT_COLUMNS + " AND events.profile_id %% %s = %s ORDER BY events.id LIMIT %s"

# Due timers of live journeys, earliest first, as SQL text for the driver (`unit_of_work._Driver`):
# through SQLAlchemy, building the query and processing each row's values cost more than the
# database's part. On PostgreSQL concurrent firers each take other timers instead of queueing.
_DUE_TIMERS = ("SELECT timers.id, timers.run_id, timers.step_id, timers.payload FROM timers "
               "JOIN journey_runs ON journey_runs.id = timers.run_id "
               "JOIN journeys ON journeys.id = journey_runs.journey_id "
               "WHERE timers.due_at <= ? AND journeys.status = ? ORDER BY timers.due_at, timers.id LIMIT ?")
_PG_DUE_TIMERS = _DUE_TIMERS + " FOR UPDATE OF timers SKIP LOCKED"
_NO_GOALS: frozenset[str] = frozenset()


def _metrics(trace: Trace, before: Run, after: Run) -> list[tuple[str, str]]:
    """Which step counters (step, metric) a trace adds one to. `before` and `after` are the run
    around the transition that emitted it: a conversion is the run's first when it had none
    before, and only a first conversion counts for the split arms the run had taken."""
    if trace.kind == "moved" and trace.step and not trace.detail:
        return [(trace.step, counters.ENTERED)]
    if trace.kind == "entered":
        return [(JOURNEY_LEVEL, counters.ENTERED)]
    if trace.kind == "completed":
        return [(JOURNEY_LEVEL, counters.COMPLETED)]
    if trace.kind == "exited":
        return [(JOURNEY_LEVEL, counters.EXITED), *([(trace.step, counters.EXITED)] if trace.step else [])]
    if trace.kind == "converted":
        found = [(JOURNEY_LEVEL, counters.CONVERTED_GOAL + trace.detail)]
        if trace.step:
            found.append((trace.step, counters.CONVERTED))
        if not before.converted:
            found += [(split, counters.ARM_CONVERTED + arm) for split, arm in sorted(after.arms.items())]
        return found
    if trace.kind == "suppressed" and trace.step:
        return [(trace.step, counters.SUPPRESSED)]
    if trace.kind == "split" and trace.step:
        return [(trace.step, counters.ARM + trace.detail.split(" ")[0])]
    return []


__all__ = ["JOURNEY_LEVEL", "JourneyNotFound", "Runtime", "TraceRecord", "slugify"]


def _group_traits(user: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """A stored group event (`intake` keeps its id and traits) as the profile traits it changes."""
    traits = stored.get("traits")
    return groups.joined(user, str(stored.get("group_id")), traits if isinstance(traits, Mapping) else {})


def _merged_profile_before(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The surviving profile as it was before a merge (`identity.merge` records it), as
    expressions see a profile: its traits, with `tags` and `timezone`."""
    before = stored.get("before")
    if not isinstance(before, Mapping):
        return {}
    user = dict(before.get("traits") or {})
    user["tags"] = list(before.get("tags") or [])
    if before.get("timezone"):
        user["timezone"] = before["timezone"]
    return user


def _by_version(pair: tuple[str, str]) -> tuple[int, str]:
    """(journey key, name) pairs in publication order, then by name."""
    return int(pair[0]), pair[1]
