"""`journeyflow simulate`: the real engine on a throwaway in-memory database, with a virtual
clock that moves from event to event and fires timers and schedules in between.

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
from engine.messages import IDENTITY_TRAITS, Message, MessageInvalid, parse_message
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


def read_events(path: Path) -> list[Message]:
    """Every message of a JSON Lines file, in time order (file order among equal times)."""
    problems: list[str] = []
    messages: list[tuple[datetime, int, Message]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"{path}:{number}: not JSON: {error.msg} at column {error.colno}")
            continue
        if isinstance(raw, dict) and "timestamp" not in raw:
            problems.append(f"{path}:{number}: timestamp: is required in a simulation")
            continue
        try:
            message = parse_message(raw, datetime.min)
        except MessageInvalid as error:
            problems += [f"{path}:{number}: {name or 'message'}: {why}" for name, why in error.problems.items()]
            continue
        messages.append((message.timestamp, number, message))
    if problems:
        raise SimulationInputError(problems)
    return [m for _, _, m in sorted(messages, key=lambda item: (item[0], item[1]))]


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
                 matcher: Matcher | None = None, actions: ActionSettings | None = None) -> None:
        self.actions = actions
        self.db: Engine = _blank_database()
        self.output = _Output()
        self.trace = trace
        self.clock = VirtualClock(start)
        self.runtime = Runtime(self.db, self.clock, matcher=matcher, observer=self._on_trace)
        for source in sources:
            self.runtime.publish(source)
        self._stock_coupon_pools()
        self.seen_outbox = 0

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
            self.output.add(row.send_at, self._action_line(row, user, row.trigger_properties))
        awaiting = [r for r in rows if r.channel == "webhook" and r.payload.get("await_reply")]
        if awaiting:  # nothing is called here: the webhook answers at once, the same way every time
            with writer(self.db).begin() as conn:
                for row in awaiting:
                    deliver_reply(conn, row.run_id, row.step_id, SIMULATED_REPLY, self.clock.now())

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

    def advance_to(self, moment: datetime) -> None:
        """Fire timers and schedule ticks due up to `moment`, in time order."""
        while True:
            timer = self.runtime.next_timer_due()
            tick = self.runtime.next_schedule_due()
            candidates = [t for t in (timer, tick) if t is not None and t <= moment]
            if not candidates:
                break
            when = min(candidates)
            self.clock.move_to(when)
            if timer is not None and timer == when:
                self.runtime.fire_due_timers()
            else:
                self.runtime.run_due_schedules()
            self._collect_actions()
        self.clock.move_to(moment)

    def run(self, messages: list[Message], until: datetime | None) -> list[dict[str, Any]]:
        for message in messages:
            self.advance_to(message.timestamp)
            self.runtime.accept([message])
            self.runtime.process_events()
            self._collect_actions()
        end = until or (self.clock.now() + DEFAULT_HORIZON)
        if until is None:
            while (due := self.runtime.next_timer_due()) is not None and due <= end:
                self.advance_to(due)
        else:
            self.advance_to(end)
        return list(self.output.ordered())


def simulate(sources: list[str], messages: list[Message], until: datetime | None = None,
             trace: bool = False, matcher: Matcher | None = None,
             seeds: Sequence[SeedProfile] = (), actions: ActionSettings | None = None) -> list[dict[str, Any]]:
    """Run journeys (DSL texts) over messages; the action (and trace) lines, in time order.
    `matcher` picks the rules backend (default: the compiled one); `seeds` are profiles that
    exist before the first message; `actions` (templates, recipients) builds each message as the
    dispatcher will (see the module docstring)."""
    start = messages[0].timestamp if messages else (until or EPOCH)
    simulation = Simulation(sources, start, trace, matcher, actions)
    for profile in seeds:
        simulation.seed(profile)
    return simulation.run(messages, until)
