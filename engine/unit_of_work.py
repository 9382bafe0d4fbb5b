"""One transaction's working set: everything a batch of events or timers reads, loaded in a few
queries, and everything it writes, buffered and written with multi-row statements at the end.

Why: applying events one at a time costs a dozen round trips each (profile, live runs, run
reload, entry check, timers, outbox...), and per-statement latency, not Python, was what
bounded the engine. A unit of work loads the profiles and live runs of every user in a batch
at once, lets the pure core move runs in memory (a run touched by three events of one batch is
read once and written once), and flushes in one pass. A batch of timers reads its own runs by
id, and the users' other runs only if a step asks about them (`expect_users`). The hot reads and
writes are SQL text run through the driver (`_Driver`), below SQLAlchemy's per-value processing.

Rules that keep it correct:
- Every run the batch sees goes through `runs`: a query that returns run ids resolves them
  here first, so the in-memory state (possibly moved already) always wins over a stale row.
- New runs get their id at once (`storage.ids`), because it is the root of every idempotency
  key the machine derives; their rows, like everything else, wait for `flush()`.
- Reads that depend on buffered writes see them: frequency caps count outbox rows not yet
  written, conversions include those of this batch.
- Run rows are updated with an optimistic check on `row_version`: a concurrent writer (another
  worker, a merge) makes the flush fail and the whole transaction roll back, never overwrite.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Text, and_, bindparam, cast, insert, select, update

from storage import counters, coupons
from storage.ids import IdBlock
from storage.tables import (
    conversions,
    events,
    journey_runs,
    outbox,
)

from .machine import LIVE_STATES, MESSAGE_CHANNELS, RunState, Trace
from .scope import EventPredicate

COUNTED_STATUSES = ("pending", "sent", "deferred")  # outbox rows that count towards caps
TIMER_KIND = "step"  # a run waits at one step at a time, so it has at most one timer
CHUNK = 500  # ids per IN (...) list: far below every backend's parameter limit

T = TypeVar("T")

# The hot writes of every batch, as SQL text built once, run with tuples through the driver's
# executemany (`Connection.exec_driver_sql`). Why: through SQLAlchemy each statement was built,
# its cache key computed and every value of every row processed by its column type, and that
# was a third of the apply path's time (issue 18); the driver does the same writes for a
# fraction. `?` is a value, `{json}` a JSON value: `_Driver` renders both per backend.
_RUN_INSERT = ("INSERT INTO journey_runs (id, profile_id, journey_id, version_id, step_id, state, entered_at, "
               "updated_at, wake_at, waiting_since, trigger_event_id, results, split_arms, row_version) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {json}, {json}, ?)")
_RUN_UPDATE = ("UPDATE journey_runs SET state=?, step_id=?, wake_at=?, waiting_since=?, results={json}, "
               "split_arms={json}, updated_at=?, row_version=row_version + 1 "
               "WHERE journey_runs.id = ? AND journey_runs.row_version = ?")
_OUTBOX_COLUMNS = ("idempotency_key", "run_id", "profile_id", "journey_id", "step_id", "channel", "payload", "send_at",
                   "status", "last_error", "created_at", "updated_at")
_OUTBOX_INSERT = (f"INSERT INTO outbox ({', '.join(_OUTBOX_COLUMNS)}) "
                  "VALUES (?, ?, ?, ?, ?, ?, {json}, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING")
_TIMER_DELETE = "DELETE FROM timers WHERE timers.run_id IN (?)"  # SQLite: one run a row, through executemany
_TIMER_INSERT = "INSERT INTO timers (run_id, due_at, kind, step_id) VALUES (?, ?, ?, ?)"
# PostgreSQL: one statement a batch, from arrays, where executemany would run a statement per row.
_PG_TIMER_DELETE = "DELETE FROM timers WHERE timers.run_id IN (SELECT unnest(%s::bigint[]))"
_PG_TIMER_INSERT = ("INSERT INTO timers (run_id, due_at, kind, step_id) "
                    "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::text[])")
_PROFILE_UPDATE = ("UPDATE profiles SET traits={json}, tags={json}, timezone=?, updated_at=?, "
                   "row_version=row_version + 1 WHERE profiles.id = ?")


class _Driver:
    """Values and SQL text as the DBAPI driver of one backend takes them, written exactly as
    SQLAlchemy's column types would have: an instant in UTC (on SQLite the text
    `YYYY-MM-DD HH:MM:SS.ffffff`, which is what makes text comparison compare instants), JSON
    through `json.dumps` (on PostgreSQL cast to `json`)."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"
        self._sql: dict[str, str] = {}

    def sql(self, template: str) -> str:
        """`template` in the driver's parameter style, rendered once."""
        found = self._sql.get(template)
        if found is None:
            found = self._sql[template] = (template.replace("?", "%s").replace("{json}", "%s::json")
                                           if self.postgresql else template.replace("{json}", "?"))
        return found

    def when(self, value: datetime | None) -> Any:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
        utc = value.astimezone(UTC)
        if self.postgresql:
            return utc
        return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}."
                f"{utc.microsecond:06d}")  # SQLAlchemy's SQLite storage format, padded years included

    @staticmethod
    def json(value: Any) -> str:
        return json.dumps(value)

    def instant(self, value: Any) -> datetime | None:
        """An instant as `UTCDateTime` reads it: aware, in UTC (SQLite hands back its text)."""
        if value is None:
            return None
        found = value if self.postgresql else datetime.fromisoformat(value)
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)

    def moment(self, value: Any) -> datetime:
        """`instant` of a NOT NULL column."""
        found = self.instant(value)
        if found is None:
            raise ValueError("NULL in a column that has none")
        return found

    def decoded(self, value: Any) -> Any:
        """A JSON column as the JSON type reads it (psycopg decodes it already)."""
        if self.postgresql or value is None:
            return value
        return {} if value == "{}" else json.loads(value)  # the commonest value, decoded for nothing

    def select(self, template: str, ids: Sequence[int], **lists: Sequence[Any]) -> str:
        """`template` with its IN lists (`{ids}`, and any other named in `lists`) as that many values."""
        marks = {name: ", ".join("?" * len(values)) for name, values in {"ids": ids, **lists}.items()}
        text = template.format(**marks)  # not kept: there is one text per length of each list
        return text.replace("?", "%s") if self.postgresql else text


_DRIVERS = {name: _Driver(name) for name in ("sqlite", "postgresql")}


def driver(conn: Connection) -> _Driver:
    return _DRIVERS[conn.dialect.name]


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# The bulk reads of the rows a unit keeps (runs, profiles, trigger events), as SQL text too, for
# the writes' reason: through SQLAlchemy each value of each row went through its column type's
# processing (`_Driver.instant` and `_Driver.decoded` do the same) and each row was a `Row`;
# the run rows alone cost a timer more than moving its run. `{ids}` is an IN list of that many
# values. Run rows carry their JSON columns as text, decoded by `RunRow.read` only for a row the
# unit adopts: the goal index's query reads runs the batch already holds (their live ones).
_RUN_SELECT = ("SELECT journey_runs.id, journey_runs.profile_id, journey_runs.journey_id, journey_runs.version_id, "
               "journey_runs.step_id, journey_runs.state, journey_runs.entered_at, journey_runs.wake_at, "
               "journey_runs.waiting_since, journey_runs.trigger_event_id, CAST(journey_runs.results AS TEXT), "
               "CAST(journey_runs.split_arms AS TEXT), journey_runs.row_version FROM journey_runs ")
_RUNS_BY_ID = _RUN_SELECT + "WHERE journey_runs.id IN ({ids})"
_LIVE_RUNS = _RUN_SELECT + ("WHERE journey_runs.profile_id IN ({ids}) AND journey_runs.state IN ("
                            + ", ".join("?" for _ in LIVE_STATES) + ")")
_ENTRY_RUNS = _RUN_SELECT + "WHERE journey_runs.profile_id IN ({ids}) AND journey_runs.version_id IN ({versions})"
_NEWEST_ENTRIES = ("SELECT journey_runs.profile_id, journey_runs.journey_id, max(journey_runs.entered_at) "
                   "FROM journey_runs WHERE journey_runs.profile_id IN ({ids}) "
                   "GROUP BY journey_runs.profile_id, journey_runs.journey_id")
_PROFILES = ("SELECT profiles.id, profiles.traits, profiles.tags, profiles.timezone, profiles.merged_into, "
             "profiles.first_identity FROM profiles WHERE profiles.id IN ({ids})")
_TRIGGERS = "SELECT events.id, events.properties FROM events WHERE events.id IN ({ids})"
# `status || ''`: see `_not_indexed`.
_RECENT_SENT = ("SELECT outbox.profile_id, outbox.channel, outbox.send_at, outbox.status, outbox.run_id FROM outbox "
                "WHERE outbox.profile_id IN ({ids}) AND outbox.channel IN ({channels}) AND outbox.send_at >= ? "
                "AND (outbox.status || '') IN ({statuses})")


def _object(text: str | None) -> dict[str, Any]:
    """A JSON object column read as text (`CAST(... AS TEXT)`), decoded: `{}` for NULL."""
    if not text or text == "{}":  # most runs' results and arms
        return {}
    return dict(json.loads(text))


class ConcurrentUpdate(RuntimeError):
    """A run row changed under this transaction (another worker got there first): roll back."""


@dataclass
class RunRow:
    """A `journey_runs` row as this unit of work sees it; `row_version` is the one it was read at."""

    id: int
    profile_id: int
    journey_id: int
    version_id: int
    step_id: str | None
    state: RunState
    entered_at: datetime
    wake_at: datetime | None
    waiting_since: datetime | None
    trigger_event_id: int | None
    results: dict[str, Any]
    split_arms: dict[str, str]
    row_version: int
    dirty: bool = False
    converted: set[str] | None = None  # goals already credited; read on the first goal

    @classmethod
    def read(cls, d: _Driver, row: Sequence[Any]) -> RunRow:
        """A row of `_RUN_SELECT`."""
        (run_id, profile_id, journey_id, version_id, step_id, state, entered_at, wake_at, waiting_since,
         trigger_event_id, results, split_arms, row_version) = row
        return cls(run_id, profile_id, journey_id, version_id, step_id, state, d.moment(entered_at), d.instant(wake_at),
                   d.instant(waiting_since), trigger_event_id, _object(results), _object(split_arms), row_version)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


@dataclass
class Profile:
    """A profile as expressions see it (`user.*`, with `tags`); written back once if changed."""

    id: int
    user: dict[str, Any]
    split_key: str  # stable across machines: see `profiles.first_identity`
    changed: bool = False

    @classmethod
    def of(cls, profile_id: int, traits: Any, tags: Any, timezone: str | None, first_identity: str | None) -> Profile:
        user = {**(traits or {}), "tags": list(tags or [])}
        if timezone:
            user["timezone"] = timezone
        return cls(profile_id, user, first_identity or f"profile:{profile_id}")


@dataclass(frozen=True)
class TraceRecord:
    """A trace line with who and where, for `simulate --trace` and the builder's preview."""

    at: datetime
    profile_id: int
    journey: str
    trace: Trace


@dataclass
class _Sent:
    channel: str
    send_at: datetime
    status: str
    buffered: bool  # in `outbox_rows`, not yet in the table
    run_id: int | None = None


@dataclass
class _Held:
    """A stored outbox row that waits for a later send time (quiet hours)."""

    id: int
    run_id: int
    step_id: str


@dataclass
class UnitOfWork:
    conn: Connection
    now: datetime
    profiles: dict[int, Profile] = field(default_factory=dict)
    survivors: dict[int, int] = field(default_factory=dict)  # merged-away profile id -> the one that holds it now
    runs: dict[int, RunRow] = field(default_factory=dict)
    live: dict[tuple[int, int], int] = field(default_factory=dict)  # (profile, journey) -> live run id
    last_entered: dict[tuple[int, int], datetime] = field(default_factory=dict)  # (profile, journey) -> newest entry
    new_runs: list[RunRow] = field(default_factory=list)  # started in this unit: inserted at flush
    run_ids: IdBlock = field(init=False)
    # `count of` history: event name -> user -> (occurred_at, properties as JSON text, event id);
    # the text is decoded into `event_props` only when a `where` needs it, once per event.
    history: dict[str, dict[int, list[tuple[datetime, str | None, int]]]] = field(default_factory=dict)
    event_props: dict[int, Mapping[str, Any]] = field(default_factory=dict)  # event id -> properties, decoded
    # The goal index: (user, version) -> (entered_at, run id) of every run here, kept up to date
    # as runs are adopted or started; `entries_loaded` says for which users a version's stored
    # runs have been read, i.e. where the index is complete.
    entries: defaultdict[tuple[int, int], list[tuple[datetime, int]]] = field(
        default_factory=lambda: defaultdict(list))
    entries_loaded: defaultdict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # version -> users
    sent_since: datetime | None = None  # outbox rows of loaded users from here on are in `sent`
    # The batch's users: the first question about one's messages, held messages or history
    # loads those of them all. `users_loaded`: those whose live runs and newest entries are here
    # too (`expect_users` leaves them to the first question that needs them).
    users: set[int] = field(default_factory=set)
    users_loaded: set[int] = field(default_factory=set)  # profiles whose runs are in `live` / `last_entered`
    trigger_props: dict[int, dict[str, Any]] = field(default_factory=dict)  # event id -> properties
    timers: dict[int, tuple[str, datetime] | None] = field(default_factory=dict)  # run id -> its timer, or none
    outbox_rows: list[dict[str, Any]] = field(default_factory=list)
    sent: defaultdict[int, list[_Sent]] = field(default_factory=lambda: defaultdict(list))
    conversion_rows: list[dict[str, Any]] = field(default_factory=list)
    counters: list[counters.CounterRow] = field(default_factory=list)
    traces: list[TraceRecord] = field(default_factory=list)
    held: dict[int, list[_Held]] = field(default_factory=dict)  # profile -> its stored messages held for later
    cancelled: list[dict[str, Any]] = field(default_factory=list)  # stored held messages to cancel at flush
    entered_this_input: set[tuple[int, int]] = field(default_factory=set)  # (profile, journey)

    def __post_init__(self) -> None:
        self.run_ids = IdBlock(self.conn, journey_runs)

    # ------------------------------------------------------------------ loading

    def load_profiles(self, profile_ids: Iterable[int]) -> None:
        """Load profiles not yet here, following merges to their survivors."""
        wanted = sorted({p for p in profile_ids if p not in self.profiles and p not in self.survivors})
        d = driver(self.conn)
        while wanted:
            merged: dict[int, int] = {}
            for part in chunks(wanted):
                for profile_id, traits, tags, timezone, merged_into, first_identity in self.conn.exec_driver_sql(
                        d.select(_PROFILES, part), tuple(part)).all():
                    if merged_into is None:
                        self.profiles[profile_id] = Profile.of(profile_id, d.decoded(traits), d.decoded(tags),
                                                               timezone, first_identity)
                    else:
                        merged[profile_id] = merged_into
            self.survivors.update(merged)
            wanted = sorted({s for s in merged.values() if s not in self.profiles and s not in self.survivors})

    def survivor(self, profile_id: int) -> int:
        while profile_id in self.survivors:
            profile_id = self.survivors[profile_id]
        return profile_id

    def profile(self, profile_id: int) -> Profile:
        found = self.profiles.get(profile_id)  # a survivor: merged-away profiles are never kept here
        if found is not None:
            return found
        self.load_profiles([profile_id])
        return self.profiles[self.survivor(profile_id)]

    def load_users(self, profile_ids: Iterable[int]) -> None:
        """Profiles plus what entries and event matching need: live runs (and the events that
        started them) and the newest entry per journey; for the users `expect_users` named too,
        so that the batch still reads them in one pass."""
        given = list(profile_ids)
        if all(p in self.users_loaded for p in given):
            return
        self.load_profiles(given)
        wanted = sorted(({self.survivor(p) for p in given} | self.users) - self.users_loaded)
        if not wanted:
            return
        d = driver(self.conn)
        for part in chunks(wanted):
            self._adopt(self.conn.exec_driver_sql(d.select(_LIVE_RUNS, part), (*part, *sorted(LIVE_STATES))).all())
            for profile_id, journey_id, newest in self.conn.exec_driver_sql(d.select(_NEWEST_ENTRIES, part),
                                                                            tuple(part)).all():
                # An entry this unit made is newer than any stored one (and can only follow this load).
                self.last_entered.setdefault((profile_id, journey_id), d.moment(newest))
        self.users_loaded.update(wanted)
        self.users.update(wanted)
        self.load_triggers(self.runs.values())

    def expect_users(self, profile_ids: Iterable[int]) -> None:
        """The batch's users, whose profiles are loaded now and whose live runs and newest entries
        wait for the first question that needs them (`load_users`, for all of them at once).

        Why: a timer moves its own run, loaded by id; most never ask about the user's other runs
        (only a profile change, re-evaluating entries and exits, does), and reading and decoding
        those runs was a third of a timer's cost. Whatever a later load reads, the runs this unit
        holds already win (`_adopt`), so loading late reads the same as loading first."""
        given = list(profile_ids)
        self.load_profiles(given)
        self.users.update(self.survivor(p) for p in given)

    def _member(self, profile_id: int) -> None:
        """Make the user one of the batch's (`users`), loading it as `load_users` does if new."""
        if self.survivor(profile_id) not in self.users:
            self.load_users([profile_id])

    def load_runs(self, run_ids: Iterable[int]) -> None:
        wanted = sorted({r for r in run_ids if r not in self.runs})
        d = driver(self.conn)
        for part in chunks(wanted):
            self._adopt(self.conn.exec_driver_sql(d.select(_RUNS_BY_ID, part), tuple(part)).all())

    def load_triggers(self, runs: Iterable[RunRow]) -> None:
        wanted = sorted({r.trigger_event_id for r in runs
                         if r.trigger_event_id is not None and r.trigger_event_id not in self.trigger_props})
        d = driver(self.conn)
        for part in chunks(wanted):
            for event_id, properties in self.conn.exec_driver_sql(d.select(_TRIGGERS, part), tuple(part)).all():
                self.trigger_props[event_id] = dict(d.decoded(properties) or {})

    def _adopt(self, rows: Iterable[Sequence[Any]]) -> None:
        """Keep the runs of `rows` (of `_RUN_SELECT`) that this unit does not hold yet."""
        d = driver(self.conn)
        for row in rows:
            if row[0] in self.runs:
                continue  # ours is newer
            run = RunRow.read(d, row)
            self.runs[run.id] = run
            self.entries[(run.profile_id, run.version_id)].append((run.entered_at, run.id))
            if run.live:
                self.live[(run.profile_id, run.journey_id)] = run.id

    # ------------------------------------------------------------------ reading

    def run(self, run_id: int) -> RunRow:
        self.load_runs([run_id])
        return self.runs[run_id]

    def live_run(self, profile_id: int, journey_id: int) -> RunRow | None:
        self.load_users([profile_id])
        run_id = self.live.get((profile_id, journey_id))
        return self.runs[run_id] if run_id is not None else None

    def trigger_event(self, run: RunRow) -> dict[str, Any] | None:
        if run.trigger_event_id is None:
            return None
        if run.trigger_event_id not in self.trigger_props:
            self.load_triggers([run])
        return dict(self.trigger_props[run.trigger_event_id])

    def latest_runs(self, profile_id: int, version_ids: Sequence[int], entered_by: datetime) -> dict[int, RunRow]:
        """Per version, the newest run (live or ended) that entered at or before `entered_by`.
        The first question about some versions loads those versions' runs for every user of
        the batch, in one query."""
        self.load_users([profile_id])
        missing = [v for v in version_ids if profile_id not in self.entries_loaded[v]]
        if missing:
            self._load_entries(missing)
        latest: dict[int, RunRow] = {}
        for version in version_ids:
            found = self.entries.get((profile_id, version))
            before = [(at, run_id) for at, run_id in found if at <= entered_by] if found else None
            if before:
                latest[version] = self.runs[max(before)[1]]
        return latest

    def _load_entries(self, versions: Sequence[int]) -> None:
        """Read the stored runs of `versions` for every user of the batch not read yet. The index
        itself is kept by `_adopt` and `start_run`, so this costs one query per version set and
        a pass over the users, never a rebuild over users x versions or over every run here."""
        users = sorted(set().union(*(self.users_loaded - self.entries_loaded[v] for v in versions)))
        d = driver(self.conn)
        wanted = sorted(set(versions))
        for part in chunks(users):
            self._adopt(self.conn.exec_driver_sql(d.select(_ENTRY_RUNS, part, versions=wanted),
                                                  (*part, *wanted)).all())
        for version in versions:
            self.entries_loaded[version].update(users)

    def converted(self, run: RunRow) -> set[str]:
        """Goals already credited to the run; the first question loads them for every run here."""
        if run.converted is None:
            found: dict[int, set[str]] = {r.id: set() for r in self.runs.values() if r.converted is None}
            for part in chunks(sorted(found)):
                for row in self.conn.execute(select(conversions.c.run_id, conversions.c.goal)
                                             .where(conversions.c.run_id.in_(part))):
                    found[row.run_id].add(row.goal)
            for run_id, goals in found.items():
                self.runs[run_id].converted = goals
            return found[run.id]
        return run.converted

    def sent_count(self, profile_id: int, channel: str | None, since: datetime) -> int:
        """Messages queued or sent to this user since `since`, those of this batch included.
        The first question loads the recent messages of every user of the batch at once."""
        self._member(profile_id)
        if self.sent_since is None or since < self.sent_since:
            self._load_sent(since)
        channels = [channel] if channel else sorted(MESSAGE_CHANNELS)
        return sum(1 for s in self.sent[profile_id]
                   if s.channel in channels and s.send_at >= since and s.status in COUNTED_STATUSES)

    def _load_sent(self, since: datetime) -> None:
        buffered = {key: [s for s in sent if s.buffered] for key, sent in self.sent.items()}
        self.sent = defaultdict(list, buffered)
        d = driver(self.conn)
        channels = sorted(MESSAGE_CHANNELS)
        for part in chunks(sorted(self.users)):
            sql = d.select(_RECENT_SENT, part, channels=channels, statuses=COUNTED_STATUSES)
            for profile_id, channel, send_at, status, run_id in self.conn.exec_driver_sql(
                    sql, (*part, *channels, d.when(since), *COUNTED_STATUSES)).all():
                self.sent[profile_id].append(_Sent(channel, d.moment(send_at), status, buffered=False,
                                                   run_id=run_id))
        self.sent_since = since

    def history_count(self, profile_id: int, event: str, where: EventPredicate | None,
                      since: datetime | None, without: int | None = None) -> int:
        """`count of ...` over the user's stored events (this batch's included, as they are
        stored before they are applied), leaving out the event with id `without`. The first
        question about an event name loads that name's events for every user of the batch."""
        self._member(profile_id)
        loaded = self.history.setdefault(event, {})
        if profile_id not in loaded:
            wanted = sorted(self.users - loaded.keys())
            for p in wanted:
                loaded[p] = []
            for part in chunks(wanted):
                for row in self.conn.execute(select(events.c.profile_id, events.c.occurred_at,
                                                    cast(events.c.properties, Text).label("properties"), events.c.id)
                                             .where(and_(events.c.profile_id.in_(part), events.c.name == event))):
                    loaded[row.profile_id].append((row.occurred_at, row.properties, row.id))
        return sum(1 for at, text, event_id in loaded[profile_id]
                   if event_id != without and (since is None or at >= since)
                   and (where is None or where(self._event_props(event_id, text))))

    def _event_props(self, event_id: int, text: str | None) -> Mapping[str, Any]:
        """An event's properties for a `where`, decoded at most once per unit: the batch's own
        events come decoded already (`process_events` reads them), history reads them as text."""
        found = self.event_props.get(event_id)
        if found is None:
            found = self.event_props[event_id] = (json.loads(text) if text else None) or {}  # as the JSON type read it
        return found

    # ------------------------------------------------------------------ writing

    def start_run(self, profile_id: int, journey_id: int, version_id: int, trigger: Any) -> RunRow:
        """A new run with its id allocated now (the id is the root of every idempotency key its
        steps derive); the row itself is inserted at `flush`, in its final state."""
        run = RunRow(self.run_ids.next(), profile_id, journey_id, version_id, None, "active", self.now, None,
                     None, trigger.id if trigger is not None else None, {}, {}, 1, dirty=True, converted=set())
        self.new_runs.append(run)
        self.runs[run.id] = run
        self.counters += counters.moves(version_id, None, (run.state, run.step_id), self.now)  # born live
        self.entries[(profile_id, version_id)].append((run.entered_at, run.id))
        self.live[(profile_id, journey_id)] = run.id
        self.last_entered[(profile_id, journey_id)] = self.now
        self.entered_this_input.add((profile_id, journey_id))
        if trigger is not None:
            self.trigger_props[trigger.id] = dict(trigger.properties or {})
        return run

    def begin_input(self) -> None:
        """A new input (an event, a timer) starts: see `entered_in_this_input`."""
        self.entered_this_input.clear()

    def entered_in_this_input(self, profile_id: int, journey_id: int) -> bool:
        """Whether this input has entered the user into the journey already. One input enters
        a user into a journey at most once, however many profile changes it causes: that is
        what ends a chain of `update` steps that re-trigger each other (or their own journey)."""
        return (profile_id, journey_id) in self.entered_this_input

    def holding_runs(self, profile_id: int) -> list[int]:
        """Runs of this user with messages held for later (quiet hours), stored or of this batch.
        The first question loads the held messages of every user of the batch, in one query."""
        self._member(profile_id)
        profile_id = self.survivor(profile_id)
        if profile_id not in self.held:
            wanted = sorted(p for p in self.users if p not in self.held)
            for p in wanted:
                self.held[p] = []
            for part in chunks(wanted):
                for row in self.conn.execute(select(outbox.c.id, outbox.c.run_id, outbox.c.step_id, outbox.c.profile_id)
                                             .where(and_(outbox.c.profile_id.in_(part),
                                                         _not_indexed(outbox.c.status) == "pending",
                                                         outbox.c.send_at > self.now))):
                    self.held[row.profile_id].append(_Held(row.id, row.run_id, row.step_id))
        runs = {h.run_id for h in self.held[profile_id]}
        runs |= {r["run_id"] for r in self.outbox_rows if r["profile_id"] == profile_id and _is_held(r, self.now)}
        return sorted(runs)

    def cancel_held(self, run_id: int, reason: str) -> list[str]:
        """Cancel the run's messages held for later, stored or of this batch; their steps."""
        steps = []
        for row in self.outbox_rows:
            if row["run_id"] == run_id and _is_held(row, self.now):
                row["status"], row["last_error"] = "cancelled", reason
                steps.append(row["step_id"])
        run = self.runs.get(run_id)
        if run is not None:
            self.holding_runs(run.profile_id)  # loads what is stored
            stored = self.held[self.survivor(run.profile_id)]
            for held in [h for h in stored if h.run_id == run_id]:
                self.cancelled.append({"b_id": held.id, "b_reason": reason})
                steps.append(held.step_id)
                stored.remove(held)
        for sent in self.sent.values():  # a cancelled message no longer counts towards caps
            for s in sent:
                if s.run_id == run_id and s.send_at > self.now:
                    s.status = "cancelled"
        return steps

    def ended(self, run: RunRow) -> None:
        """Forget a run's live slot once it has completed or exited."""
        if self.live.get((run.profile_id, run.journey_id)) == run.id:
            del self.live[(run.profile_id, run.journey_id)]

    def set_timer(self, run_id: int, timer: tuple[str, datetime] | None) -> None:
        self.timers[run_id] = timer

    def add_outbox(self, row: dict[str, Any]) -> None:
        self.outbox_rows.append(row)
        self.sent[row["profile_id"]].append(_Sent(row["channel"], row["send_at"], row["status"], buffered=True,
                                                  run_id=row["run_id"]))

    def add_conversion(self, run: RunRow, goal: str, occurred_at: datetime) -> None:
        self.converted(run).add(goal)
        self.conversion_rows.append({"run_id": run.id, "goal": goal, "occurred_at": occurred_at})

    def claim_coupon(self, profile_id: int, run_id: int, pool: str, key: str) -> Mapping[str, Any] | None:
        """A free code of `pool` for this user under idempotency key `key` (`storage.coupons`)."""
        if self.new_runs:  # the code row refers to the run
            self._insert_new_runs([r for r in self.new_runs if r.id == run_id])
        return coupons.claim(self.conn, pool, profile_id, run_id, key, self.now)

    def mark_processed(self, event_ids: Sequence[int]) -> None:
        """Mark events applied, in this transaction: one statement per batch on PostgreSQL (an
        array), the driver's executemany on SQLite."""
        d = driver(self.conn)
        if d.postgresql:
            self.conn.exec_driver_sql("UPDATE events SET processed_at=%s "
                                      "WHERE events.id IN (SELECT unnest(%s::bigint[]))",
                                      (d.when(self.now), list(event_ids)))
        else:
            now = d.when(self.now)
            self.conn.exec_driver_sql("UPDATE events SET processed_at=? WHERE events.id IN (?)",
                                      [(now, event_id) for event_id in event_ids])

    def flush(self) -> None:
        """Write everything buffered, each kind of row with one multi-row statement. Updates of
        existing runs go before new runs: a run that ended in this unit is still live in the
        table, and the one-live-run index would refuse its successor."""
        self._flush_profiles()
        self._flush_runs()
        self._insert_new_runs(self.new_runs)
        self._flush_timers()
        if self.outbox_rows:
            d = driver(self.conn)
            when = self._when(d)
            self.conn.exec_driver_sql(d.sql(_OUTBOX_INSERT), [
                (r["idempotency_key"], r["run_id"], r["profile_id"], r["journey_id"], r["step_id"], r["channel"],
                 d.json(r["payload"]), when(r["send_at"]), r["status"], r["last_error"], when(r["created_at"]),
                 when(r["updated_at"])) for r in self.outbox_rows])
            self.outbox_rows = []
            for sent in self.sent.values():
                for s in sent:
                    s.buffered = False
        if self.cancelled:
            self.conn.execute(update(outbox).where(and_(outbox.c.id == bindparam("b_id"),
                                                        outbox.c.status == "pending")).values(
                status="cancelled", last_error=bindparam("b_reason"), updated_at=self.now), self.cancelled)
            self.cancelled = []
        if self.conversion_rows:
            self.conn.execute(insert(conversions), self.conversion_rows)
            self.conversion_rows = []
        totals = _summed(self.counters)
        if totals:
            d = driver(self.conn)
            self.conn.exec_driver_sql(d.sql(counters.UPSERT_SQL), [(v, s, m, d.when(b), n) for v, s, m, b, n in totals])
        self.counters = []

    def _when(self, d: _Driver) -> Callable[[datetime | None], Any]:
        """`d.when`, rendering each distinct instant in UTC once: most of what a flush writes is
        this unit's `now`, and deadlines and send times repeat (a wait's, quiet hours' end).
        Other zones are rendered every time: two equal instants of one zone may differ in `fold`."""
        rendered: dict[datetime, Any] = {}

        def when(value: datetime | None) -> Any:
            if value is None or value.tzinfo is not UTC:
                return d.when(value)
            found = rendered.get(value)
            if found is None:
                found = rendered[value] = d.when(value)
            return found
        return when

    def _flush_profiles(self) -> None:
        changed = [p for p in self.profiles.values() if p.changed]
        if not changed:
            return
        d = driver(self.conn)
        now = d.when(self.now)
        params = []
        for p in changed:
            zone = p.user.get("timezone")
            params.append((d.json({k: v for k, v in p.user.items() if k != "tags"}),
                           d.json(list(p.user.get("tags") or [])), zone if isinstance(zone, str) else None, now, p.id))
            p.changed = False
        self.conn.exec_driver_sql(d.sql(_PROFILE_UPDATE), params)

    def _insert_new_runs(self, runs: Sequence[RunRow]) -> None:
        if not runs:
            return
        d = driver(self.conn)
        when = self._when(d)
        now = when(self.now)
        self.conn.exec_driver_sql(d.sql(_RUN_INSERT), [
            (r.id, r.profile_id, r.journey_id, r.version_id, r.step_id, r.state, when(r.entered_at), now,
             when(r.wake_at), when(r.waiting_since), r.trigger_event_id, _json_object(d, r.results),
             _json_object(d, r.split_arms), r.row_version) for r in runs])
        for r in runs:
            r.dirty = False
        written = {r.id for r in runs}
        self.new_runs = [r for r in self.new_runs if r.id not in written]

    def _flush_runs(self) -> None:
        new = {r.id for r in self.new_runs}
        dirty = [r for r in self.runs.values() if r.dirty and r.id not in new]
        if not dirty:
            return
        d = driver(self.conn)
        when = self._when(d)
        now = when(self.now)
        params = [(r.state, r.step_id, when(r.wake_at), when(r.waiting_since), _json_object(d, r.results),
                   _json_object(d, r.split_arms), now, r.id, r.row_version) for r in dirty]
        done = self.conn.exec_driver_sql(d.sql(_RUN_UPDATE), params)
        if self.conn.dialect.supports_sane_multi_rowcount and done.rowcount != len(params):
            raise ConcurrentUpdate(f"{len(params) - done.rowcount} of {len(params)} runs changed under this batch")
        for r in dirty:
            r.row_version += 1
            r.dirty = False

    def _flush_timers(self) -> None:
        if not self.timers:
            return
        d = driver(self.conn)
        when = self._when(d)
        rows = [(run_id, when(due_at), TIMER_KIND, step)
                for run_id, timer in sorted(self.timers.items()) if timer is not None
                for step, due_at in [timer]]
        if d.postgresql:
            self.conn.exec_driver_sql(_PG_TIMER_DELETE, (sorted(self.timers),))
            if rows:
                self.conn.exec_driver_sql(_PG_TIMER_INSERT, tuple(list(column) for column in zip(*rows, strict=True)))
        else:
            self.conn.exec_driver_sql(d.sql(_TIMER_DELETE), [(run_id,) for run_id in sorted(self.timers)])
            if rows:
                self.conn.exec_driver_sql(d.sql(_TIMER_INSERT), rows)
        self.timers = {}


def _json_object(d: _Driver, value: dict[str, Any]) -> str:
    """A JSON object column's text; most runs' results and split arms are empty."""
    return d.json(value) if value else "{}"


def _summed(rows: Iterable[counters.CounterRow]) -> list[counters.CounterRow]:
    """`counters.summed`, after adding up the rows of one counter at one moment: a batch's rows
    nearly all carry its `now`, and finding each row's hour was most of the summing's cost.
    Only moments in UTC are merged: two equal moments in another zone may differ by `fold`,
    and so lie in different hours."""
    merged: dict[tuple[int, str, str, datetime], int] = {}
    others: list[counters.CounterRow] = []
    for row in rows:
        version_id, step_id, metric, moment, n = row
        if moment.tzinfo is UTC:
            key = (version_id, step_id, metric, moment)
            merged[key] = merged.get(key, 0) + n
        else:
            others.append(row)
    return counters.summed([*((v, s, m, at, n) for (v, s, m, at), n in merged.items()), *others])


def _not_indexed(status: ColumnElement[str]) -> ColumnElement[str]:
    """`status || ''`: the same value, which no index of `status` can answer. Questions about a
    batch's users must go through the profile index; without statistics SQLite prefers
    (status, send_at), and reads every pending or sent message of everyone in the period."""
    return status + ""


def _is_held(row: Mapping[str, Any], now: datetime) -> bool:
    return bool(row["status"] == "pending" and row["send_at"] > now)


class UnitHistory:
    """The `History` port for one user, answered by the unit of work; `without` leaves one event
    out, to see a condition as it stood before that event."""

    def __init__(self, unit: UnitOfWork, profile_id: int, without: int | None = None) -> None:
        self.unit, self.profile_id, self.without = unit, profile_id, without

    def count(self, event: str, where: EventPredicate | None, since: datetime | None) -> int:
        return self.unit.history_count(self.profile_id, event, where, since, self.without)


class UnitPorts:
    """The machine's `Ports` for one run, answered by the unit of work."""

    def __init__(self, unit: UnitOfWork, profile_id: int, run_id: int) -> None:
        self.unit, self.profile_id, self.run_id = unit, profile_id, run_id

    def sent_count(self, channel: str | None, since: datetime) -> int:
        return self.unit.sent_count(self.profile_id, channel, since)

    def claim_coupon(self, pool: str, key: str) -> Mapping[str, Any] | None:
        return self.unit.claim_coupon(self.profile_id, self.run_id, pool, key)


__all__ = ["ConcurrentUpdate", "Profile", "RunRow", "TraceRecord", "UnitHistory", "UnitOfWork", "UnitPorts", "chunks"]
