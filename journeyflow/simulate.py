"""`journeyflow simulate`: the real engine on a throwaway in-memory database, with a virtual
clock that moves from event to event and fires timers and schedules in between.

It decides as the live engine does (`api/engine_loop.py`, `journeyflow process`): at each
instant the messages that arrive then are accepted and applied first, then the timers and
schedule ticks due then fire, so an event at exactly a `wait for` deadline counts as received.
A message arrives at its `receivedAt` when the events file gives one (a late event), else at
its `timestamp`; it keeps its `timestamp` as when it happened, so a late event that happened
before a wait began does not satisfy it (docs/engine.md, "Moving").

Same input, same output, byte for byte: time comes only from the events and the virtual
clock, splits hash user ids, and every list is ordered by (time, sequence).

Given the actions settings (`journeyflow simulate --actions-settings`), each message is built
the way the dispatcher will build it when it sends (actions/compose.py): a named template looked
up in `[templates.NAME]` and rendered, the recipient read off the profile, and anything that
would fail the real send (an unknown template, no phone number) said as that message's error.
Without them (the builder's simulation panel), a template send says only its name.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from actions.compose import compose
from actions.errors import MessageInvalid as SendInvalid
from actions.outbox import Claimed
from actions.settings import Settings as ActionSettings
from actions.templates import TemplateFailed, render
from dsl import graph as g
from engine.clock import VirtualClock
from engine.matcher import Matcher
from engine.messages import IDENTITY_TRAITS, Message, MessageInvalid, parse_message, parse_time
from engine.runtime import Runtime, TraceRecord
from storage import connect, migrate, writer
from storage.replies import deliver_reply
from storage.tables import coupon_codes, coupon_pools, events, identities, journey_runs, journeys, outbox, profiles

SIMULATED_CODES_PER_POOL = 1000
DEFAULT_HORIZON = timedelta(days=366)  # with no --until: run the timers out, but not forever
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # where the clock starts when there are no events
SIMULATED_REPLY = {"status": 200, "body": None, "simulated": True}  # what every webhook answers in a simulation
# Alembic's `context` is one global per process: two simulations migrating their throwaway
# databases at once on two threads (the builder reruns scenarios on worker threads) would run
# each other's migrations on the wrong connection. So the schema is migrated once, under this
# lock, and each simulation starts from a copy of it (`_blank_database`).
_MIGRATING = threading.Lock()
_schema: bytes | None = None  # an empty migrated database, as sqlite3's serialize() gives it
IDENTITY_ORDER = ("user_id", "anonymous_id", "phone", "email", "wechat_openid", "crm_id")


class SimulationInputError(ValueError):
    """The events file has problems; each is `file:line: field: what`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class ReceivedMessage(Message):
    """A message that reached the engine at `received_at` (Segment's `receivedAt`) rather than
    the moment it happened: a phone that was offline, a pipeline that batches. The simulation
    accepts it then; `timestamp` stays when it happened, which is what the engine stores as the
    event's `occurred_at` and what decides whether it was late for a wait."""

    received_at: datetime = field(kw_only=True)  # aware, UTC


def arrival(message: Message) -> datetime:
    """When a message reaches the engine: its `receivedAt` if it has one, else when it happened."""
    return message.received_at if isinstance(message, ReceivedMessage) else message.timestamp


def in_arrival_order(messages: Iterable[Message]) -> list[Message]:
    """Messages as the engine receives them: by arrival, in the given order among equal times."""
    return sorted(messages, key=arrival)  # sorted() is stable


def received(message: Message, at: datetime) -> ReceivedMessage:
    """The message, arriving at `at`."""
    return ReceivedMessage(**{f.name: getattr(message, f.name) for f in fields(Message)}, received_at=at)


def read_events(path: Path) -> list[Message]:
    """Every message of a JSON Lines file, in arrival order (file order among equal times)."""
    problems: list[str] = []
    messages: list[Message] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{path}:{number}: not JSON: {error.msg} at column {error.colno}")
            continue
        message, wrong = read_event(raw)
        problems += [f"{path}:{number}: {name}: {why}" for name, why in wrong.items()]
        if message is not None:
            messages.append(message)
    if problems:
        raise SimulationInputError(problems)
    return in_arrival_order(messages)


def read_event(raw: Any) -> tuple[Message | None, dict[str, str]]:
    """One line's message, or every problem it has (field -> what). A simulation has no clock
    of its own to stamp a message with, so a line needs a `timestamp` or a `receivedAt`; with
    only `receivedAt`, it happened when it arrived (as the engine's intake reads it)."""
    if isinstance(raw, dict) and raw.get("timestamp") is None and raw.get("receivedAt") is None:
        return None, {"timestamp": "is required in a simulation"}
    problems: dict[str, str] = {}
    at: datetime | None = None
    if isinstance(raw, dict) and raw.get("receivedAt") is not None:
        try:
            at = parse_time(raw["receivedAt"])
        except ValueError as error:
            problems["receivedAt"] = str(error)
    try:
        message = parse_message(raw, at or datetime.min)
    except MessageInvalid as error:
        problems = {(name or "message"): why for name, why in error.problems.items()} | problems
    if problems:
        return None, problems
    return (message if at is None else received(message, at)), {}


def _blank_database() -> Engine:
    """A new in-memory database with the schema. Migrating takes about 0.3 s, most of a
    builder simulation's time, so it is done once per process and copied after that."""
    global _schema
    with _MIGRATING:
        if _schema is None:
            template = connect("sqlite://")
            try:
                migrate(template)
                with template.connect() as conn:
                    _schema = conn.connection.driver_connection.serialize()  # type: ignore[union-attr]
            finally:
                template.dispose()
    db = connect("sqlite://")
    with db.connect() as conn:  # the engine's one connection (StaticPool), outside any transaction
        conn.connection.driver_connection.deserialize(_schema)  # type: ignore[union-attr]
    return db


@dataclass(frozen=True)
class SeedProfile:
    """A person as they stand before the simulated events: the builder's sample or a real
    profile's traits, tags, time zone and identities, without its history.

    Seeded rather than sent as an identify message, because an identify is an event: it would
    count in history and could fire a `trigger when`, which the real person's past did not."""

    user_id: str
    traits: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    timezone: str | None = None
    identities: tuple[tuple[str, str], ...] = ()  # besides the user id: (kind, value)

    def all_identities(self) -> list[tuple[str, str]]:
        """The user id, the others given, and identity traits (as an identify would attach)."""
        found = [("user_id", self.user_id), *self.identities]
        found += [(t, str(self.traits[t]).strip()) for t in IDENTITY_TRAITS
                  if isinstance(self.traits.get(t), str | int) and str(self.traits[t]).strip()]
        return list(dict.fromkeys(found))


@dataclass
class _Output:
    lines: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)

    def add(self, at: datetime, line: dict[str, Any]) -> None:
        self.lines.append((at, len(self.lines), line))

    def ordered(self) -> Iterator[dict[str, Any]]:
        for _, _, line in sorted(self.lines, key=lambda item: (item[0], item[1])):
            yield line


class Simulation:
    def __init__(self, sources: list[str], start: datetime, trace: bool = False,
                 matcher: Matcher | None = None, actions: ActionSettings | None = None,
                 default_zone: str = "UTC", forced_arms: Mapping[str, int] | None = None) -> None:
        self.actions = actions
        self.db: Engine = _blank_database()
        self.output = _Output()
        self.trace = trace
        self.clock = VirtualClock(start)
        self.runtime = Runtime(self.db, self.clock, matcher=matcher, observer=self._on_trace,
                               default_zone=default_zone, forced_arms=forced_arms)
        for source in sources:
            self.runtime.publish(source)
        self._stock_coupon_pools()
        self.seen_outbox = 0
        self.awaiting: list[tuple[int, str]] = []  # (run id, step id) of webhooks not yet answered
        self.lines_of: dict[int, dict[str, Any]] = {}  # outbox id -> its line, to show a later status

    def _stock_coupon_pools(self) -> None:
        """Give every pool the journeys use placeholder codes, so coupon steps can be seen."""
        pools = sorted({n.pool for p in self.runtime.programs.values() for n in p.journey.nodes.values()
                        if isinstance(n, g.CouponNode)})
        with self.db.begin() as conn:
            for name in pools:
                pool_id = conn.execute(insert(coupon_pools).values(name=name, created_at=self.clock.now())
                                       .returning(coupon_pools.c.id)).scalar_one()
                conn.execute(insert(coupon_codes), [{"pool_id": pool_id, "code": f"{name}-{i:04d}"}
                                                    for i in range(1, SIMULATED_CODES_PER_POOL + 1)])

    def seed(self, profile: SeedProfile) -> None:
        """Write a profile as it is before the events; the events then find it by its user id."""
        now = self.clock.now()
        with writer(self.db).begin() as conn:
            profile_id = conn.execute(insert(profiles).values(
                traits=dict(profile.traits), tags=list(profile.tags), timezone=profile.timezone or None,
                first_identity=f"user_id:{profile.user_id}", created_at=now, updated_at=now,
            ).returning(profiles.c.id)).scalar_one()
            conn.execute(insert(identities), [{"kind": kind, "value": value, "profile_id": profile_id}
                                              for kind, value in profile.all_identities()])

    def _user_id(self, profile_id: int) -> str:
        with self.db.connect() as conn:
            found = dict(conn.execute(select(identities.c.kind, identities.c.value)
                                      .where(identities.c.profile_id == profile_id)).all())
        return next((found[k] for k in IDENTITY_ORDER if k in found), f"profile:{profile_id}")

    def _on_trace(self, record: TraceRecord) -> None:
        if self.trace:
            self.output.add(record.at, {"at": record.at.isoformat(), "user_id": self._user_id(record.profile_id),
                                        "journey": record.journey, "trace": record.trace.kind,
                                        "step": record.trace.step, "detail": record.trace.detail})

    def _collect_actions(self) -> None:
        """Render the outbox rows written since the last look, with the profile as it is now."""
        trigger = events.alias("trigger")
        query = (select(outbox, journeys.c.slug, profiles.c.traits, profiles.c.tags,
                        trigger.c.properties.label("trigger_properties"))
                 .join(journeys, journeys.c.id == outbox.c.journey_id)
                 .join(profiles, profiles.c.id == outbox.c.profile_id)
                 .join(journey_runs, journey_runs.c.id == outbox.c.run_id)
                 .outerjoin(trigger, trigger.c.id == journey_runs.c.trigger_event_id)
                 .where(outbox.c.id > self.seen_outbox).order_by(outbox.c.id))
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            self.seen_outbox = row.id
            user = {**(row.traits or {}), "tags": list(row.tags or [])}
            self.lines_of[row.id] = self._action_line(row, user, row.trigger_properties)
            self.output.add(row.send_at, self.lines_of[row.id])
        self.awaiting += [(r.run_id, r.step_id) for r in rows
                          if r.channel == "webhook" and r.payload.get("await_reply")]

    def _answer_webhooks(self) -> int:
        """Answer the webhooks queued since the last answer, at once and the same way every time
        (nothing is called); how many. After the engine's pass, as the dispatcher would."""
        awaiting, self.awaiting = self.awaiting, []
        if awaiting:
            with writer(self.db).begin() as conn:
                for run_id, step_id in awaiting:
                    deliver_reply(conn, run_id, step_id, SIMULATED_REPLY, self.clock.now())
        return len(awaiting)

    def _identities(self, profile_id: int) -> dict[str, str]:
        """kind -> value, the first of each kind in order, as the dispatcher reads them."""
        with self.db.connect() as conn:
            found = conn.execute(select(identities.c.kind, identities.c.value).where(
                identities.c.profile_id == profile_id).order_by(identities.c.kind, identities.c.value)).all()
        known: dict[str, str] = {}
        for kind, value in found:
            known.setdefault(kind, value)
        return known

    def _as_sent(self, line: dict[str, Any], row: Any, user: dict[str, Any], trigger: Any,
                 actions: ActionSettings) -> dict[str, Any]:
        """The message as the dispatcher would send it now: its recipient and rendered content,
        or the reason the send would fail."""
        payload = row.payload
        claimed = Claimed(id=row.id, key=row.idempotency_key, channel=row.channel, payload=payload, attempts=1,
                          lease_until=self.clock.now(), profile_id=row.profile_id, journey=row.slug,
                          step_id=row.step_id, user=user, event=dict(trigger) if trigger is not None else None,
                          identities=self._identities(row.profile_id), run_id=row.run_id)
        if payload.get("template"):
            line["template"] = payload["template"]
        try:
            delivery = compose(claimed, actions)
        except SendInvalid as error:
            line["content"] = None
            line["error"] = str(error)
        else:
            line["to"] = delivery.to
            if row.channel == "webhook":
                line["content"] = delivery.to
                line["webhook_body"] = payload.get("body")
            else:
                line["content"] = delivery.text
                if delivery.title:
                    line["title"] = delivery.title
        if row.status != "pending":
            line["status"] = row.status
            line["reason"] = row.last_error
        return line

    def _action_line(self, row: Any, user: dict[str, Any], trigger: Any) -> dict[str, Any]:
        line: dict[str, Any] = {"at": row.send_at.isoformat(), "user_id": self._user_id(row.profile_id),
                                "journey": row.slug, "step": row.step_id, "channel": row.channel}
        payload = row.payload
        if self.actions is not None and row.channel in ("sms", "push", "webhook"):
            return self._as_sent(line, row, user, trigger, self.actions)
        if row.channel in ("sms", "push"):
            if payload.get("template"):
                line["content"] = f"template:{payload['template']}"
            else:
                try:
                    line["content"] = render(payload.get("text") or "", user, trigger, payload.get("results") or {})
                except TemplateFailed as error:
                    line["content"] = None
                    line["error"] = str(error)
            if payload.get("title"):
                line["title"] = payload["title"]
        elif row.channel == "coupon":
            line["content"] = payload.get("pool")
            line["coupon_code"] = payload.get("code")
        elif row.channel == "webhook":
            line["content"] = payload.get("url")
            line["webhook_body"] = payload.get("body")
        if row.status != "pending" and row.channel in ("sms", "push"):
            line["status"] = row.status
            line["reason"] = row.last_error
        return line

    def run(self, messages: Sequence[Message], until: datetime | None) -> list[dict[str, Any]]:
        """Move the clock from instant to instant (a message arrives, a timer or a schedule tick
        falls due) and do at each what the live engine would; the output lines, in time order."""
        queue = deque(in_arrival_order(messages))
        last = max(self.clock.now(), arrival(queue[-1])) if queue else self.clock.now()
        horizon = until if until is not None else last + DEFAULT_HORIZON
        while (moment := self._next_instant(queue, until, horizon)) is not None:
            self.clock.move_to(moment)
            while queue and arrival(queue[0]) <= moment:
                self.runtime.accept([queue.popleft()])
            self._settle()
        if until is not None:
            self.clock.move_to(until)
        self._show_final_statuses()
        return list(self.output.ordered())

    def _show_final_statuses(self) -> None:
        """A message is listed when it is queued, but may change after: a send held by quiet
        hours is cancelled when its run exits before it goes. Show each as it ends."""
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.id, outbox.c.channel, outbox.c.status, outbox.c.last_error)
                                .where(outbox.c.status != "pending")).all()
        for row in rows:
            line = self.lines_of.get(row.id)
            if line is not None and row.channel in self._channels_with_status():
                line["status"], line["reason"] = row.status, row.last_error

    def _channels_with_status(self) -> tuple[str, ...]:
        """The messages whose line says their status when it is not pending."""
        return ("sms", "push", "webhook") if self.actions is not None else ("sms", "push")

    def _next_instant(self, queue: deque[Message], until: datetime | None, horizon: datetime) -> datetime | None:
        """The next moment anything happens, or None when the simulation is over.

        Timers and ticks count up to the next arrival, after the last one up to `until`;
        without `until`, only while timers are left within the horizon, and schedule ticks only
        up to the next timer: a daily schedule alone would otherwise run the whole horizon."""
        now = self.clock.now()
        timer = self.runtime.next_timer_due()
        if queue:
            bound = arrival(queue[0])
        elif until is not None:
            bound = until
        elif timer is not None and timer <= horizon:
            bound = timer
        else:
            return None
        due = [t for t in (timer, self.runtime.next_schedule_due()) if t is not None and now < t <= bound]
        return min(due, default=bound if queue else None)

    def _settle(self) -> None:
        """Everything due at this instant, in the live loop's order (`api/engine_loop.py`,
        `journeyflow process`): the events that have arrived, then the due timers, then the due
        schedule ticks; then the webhooks queued meanwhile answer, as the dispatcher would. Again
        until a pass finds nothing to do: a reply, or a timer due at once, makes more work now."""
        while True:
            done = 0
            while applied := self.runtime.process_events():
                done += applied
                self._collect_actions()
            done += self.runtime.fire_due_timers()
            self._collect_actions()
            done += self.runtime.run_due_schedules()
            self._collect_actions()
            if not done + self._answer_webhooks():
                return


def simulate(sources: list[str], messages: Sequence[Message], until: datetime | None = None,
             trace: bool = False, matcher: Matcher | None = None,
             seeds: Sequence[SeedProfile] = (), actions: ActionSettings | None = None,
             default_zone: str = "UTC", forced_arms: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Run journeys (DSL texts) over messages; the action (and trace) lines, in time order.
    `matcher` picks the rules backend (default: the compiled one); `seeds` are profiles that
    exist before the first message; `actions` (templates, recipients) builds each message as the
    dispatcher will (see the module docstring); `default_zone` is the installation's zone;
    `forced_arms` (split id -> arm index) sends everyone down those arms instead of the arm
    their id hashes to, to see a branch the sample would not reach."""
    start = min(map(arrival, messages)) if messages else (until or EPOCH)
    simulation = Simulation(sources, start, trace, matcher, actions, default_zone, forced_arms)
    for profile in seeds:
        simulation.seed(profile)
    return simulation.run(messages, until)
