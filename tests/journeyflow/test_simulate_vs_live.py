"""`journeyflow simulate` decides exactly as the live engine does.

The example journeys run over one generated mix of messages twice: (a) through
`journeyflow.simulate.simulate`, and (b) on a real database (both backends) by a `Runtime`
driven the way a server drives it: each message accepted when it arrives, then the live loop's
own pass (`api/engine_loop.EngineLoop.run_once`: events, then timers, then schedule ticks)
until there is nothing left to do at that instant, with a stand-in dispatcher answering the
webhooks that wait for a reply, as `simulate` answers them. Every action (the outbox rows) and
where every run ended must be the same.

The mix is made to hit the cases where order decides: events at exactly a timer's instant (a
`wait for` deadline, the end of a `wait`, a schedule tick), many users' events at one instant,
and late events (`receivedAt` after `timestamp`), some that happened before the wait they
would answer began, some during it.
"""

from __future__ import annotations

import random
from collections import deque
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

import journeyflow.simulate as simulation
from api.engine_loop import EngineLoop
from dsl import compile_source
from dsl import graph as g
from engine.clock import VirtualClock
from engine.messages import Message, parse_message
from engine.runtime import Runtime, slugify
from journeyflow.simulate import SIMULATED_CODES_PER_POOL, SIMULATED_REPLY, ReceivedMessage, received, simulate
from storage import writer
from storage.replies import deliver_reply
from storage.tables import coupon_codes, coupon_pools, identities, journey_runs, journeys, outbox

ROOT = Path(__file__).parents[2]
SOURCES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples/journeys").glob("*.journey"))]
START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday, 08:00 in Shanghai
UNTIL = START + timedelta(days=17)
USERS = 10
DAYS = 4  # the stories begin within the first DAYS days
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# Schedule ticks of the examples, in UTC: lifecycle 03:00 and birthday 09:30 in Shanghai.
TICKS = (timedelta(hours=19), timedelta(hours=1, minutes=30))

Row = tuple[Any, ...]


# --------------------------------------------------------------------------- the messages


class Mix:
    """A reproducible mix of messages for the example journeys."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.messages: list[Message] = []
        self.turns: dict[str, int] = {}

    def turn(self, story: str, count: int) -> int:
        """Which of a story's `count` endings comes next: each in turn, so that every one is
        told however few users there are."""
        self.turns[story] = self.turns.get(story, -1) + 1
        return self.turns[story] % count

    def add(self, raw: dict[str, Any], at: datetime, late_by: timedelta | None = None) -> None:
        raw = {**raw, "messageId": f"m{len(self.messages)}", "timestamp": at.isoformat()}
        message = parse_message(raw, at)
        self.messages.append(received(message, at + late_by) if late_by else message)

    def track(self, user: str, event: str, at: datetime, late_by: timedelta | None = None, **props: Any) -> None:
        """A track at `at`, arriving `late_by` after it; unless given (`timedelta(0)`: on time,
        for the stories whose instant matters), sometimes late at random."""
        if late_by is None and self.rng.random() < 0.2:  # now and then, a phone that was offline
            late_by = self.rng.choice([5 * MINUTE, 2 * HOUR, DAY])
        self.add({"type": "track", "userId": user, "event": event, "properties": props}, at, late_by)

    def moment(self) -> datetime:
        """A time in the first DAYS days: on the hour (so users share instants), or exactly at
        a schedule tick."""
        day = START + self.rng.randrange(DAYS) * DAY
        if self.rng.random() < 0.2:
            return day + self.rng.choice(TICKS)
        return day + self.rng.randrange(24) * HOUR

    def person(self, index: int) -> str:
        """An identify with the traits the audiences and `trigger when`s read."""
        user, pick = f"u{index:02d}", self.rng.random
        tags = ["member"] if pick() < 0.6 else []
        traits: dict[str, Any] = {
            "first_name": f"n{index}", "tags": tags + (["unsubscribed"] if pick() < 0.1 else []),
            "signup_at": (START - self.rng.choice([3, 10]) * DAY).isoformat(),
            "first_purchase_at": (START - self.rng.choice([20, 300]) * DAY).isoformat(),
            "last_purchase_at": (START - self.rng.choice([5, 70, 100, 200]) * DAY).isoformat(),
            "total_spend": self.rng.choice([100, 1200, 3500]), "days_until_birthday": self.rng.choice([3, 3, 10]),
            "region": self.rng.choice(["sh", "bj"]), "points": 0, "referral_count": 0,
        }
        if pick() < 0.7:
            traits["push_token"] = f"tok-{index}"
        if pick() < 0.8:
            traits["phone"] = f"1380000{index:04d}"
        if pick() < 0.4:
            traits["crm_member_id"] = f"c{index}"
        self.add({"type": "identify", "userId": user, "traits": traits}, START + (index % 3) * 10 * MINUTE)
        return user

    def cart(self, user: str, at: datetime) -> None:
        self.track(user, "add_to_cart", at, sku="L-1", product_name="月抛", price=99, cart_value=99)
        then = self.turn("cart", 4)
        if then == 0:
            self.track(user, "cart_viewed", at + HOUR + DAY, late_by=timedelta(0), cart_value=99)  # the deadline
        elif then == 1:
            self.track(user, "cart_viewed", at + 3 * HOUR, cart_value=99)
        elif then == 2:
            self.track(user, "purchase", at + HOUR, late_by=timedelta(0), order_id=f"o-{at:%j%H%M}{user}",
                       amount=99, category="lens")  # the exit, at the end of the grace wait

    def care_solution(self, user: str, at: datetime) -> None:
        self.track(user, "purchase", at, late_by=timedelta(0), order_id=f"o-{at:%j%H%M}{user}", amount=58,
                   category="care_solution", channel="wechat_mini")
        then = self.turn("care_solution", 5)
        looked: dict[str, Any] = {"category": "lens", "sku": "L-1D"}
        if then == 0:
            self.track(user, "product_viewed", at + 7 * DAY, late_by=timedelta(0), **looked)  # the deadline
        elif then == 1:
            self.track(user, "product_viewed", at + 3 * DAY, **looked)
        elif then == 2:  # happened before the wait began, arrived during it
            self.track(user, "product_viewed", at + DAY, late_by=2 * DAY, **looked)
        elif then == 3:  # happened during the wait, arrived late but in time
            self.track(user, "product_viewed", at + 2 * DAY + HOUR, late_by=4 * HOUR, **looked)

    def signup(self, user: str, at: datetime) -> None:
        referrer = f"u{self.rng.randrange(USERS):02d}" if self.rng.random() < 0.6 else None
        props = {"source": self.rng.choice(["qr_code", "wechat", "store", "app", "ad"]), "region": "sh",
                 "store_id": "s-1", "product": "月抛", **({"referrer_id": referrer} if referrer else {})}
        self.track(user, "signup", at, late_by=timedelta(0), **props)
        then = self.turn("signup", 3)
        if then == 0:
            self.track(user, "coupon_redeemed", at + 14 * DAY, late_by=timedelta(0), pool="REFERRAL_SAMPLE",
                       code="REFERRAL_SAMPLE-0001")  # the deadline
        elif then == 1:
            self.track(user, "purchase", at + 3 * DAY, late_by=timedelta(0), order_id=f"o-{at:%j%H%M}{user}",
                       amount=120, category="lens")  # the A/B test's exit, at the end of its wait

    def referrer(self, user: str, at: datetime) -> None:
        for n in range(self.rng.randrange(1, 4)):
            self.track(user, "points_credited", at + n * DAY, points=200, reason="referral",
                       invitee_id="x", balance=200 * (n + 1))
        if self.rng.random() < 0.5:
            self.track(user, "points_redeemed", at + 5 * DAY, points=100, order_id="o-p")

    def lapsed(self, user: str, at: datetime) -> None:
        """A buyer whom the profile service's nightly correction makes 61 days quiet: the
        identify makes the win-back's `trigger when` true (a purchase alone never enters it)."""
        self.track(user, "purchase", at, order_id=f"o-{at:%j%H%M}{user}", amount=80, category="accessory")
        self.add({"type": "identify", "userId": user, "traits": {
            "last_purchase_at": (at - 61 * DAY).isoformat(), "tags": []}}, at + HOUR)

    def others(self, user: str, at: datetime) -> None:
        kind = self.turn("others", 4)
        if kind == 0:
            self.track(user, "purchase", at, order_id=f"o-{at:%j%H%M}{user}", amount=300, category="lens",
                       channel=self.rng.choice(["store", "wechat_pay", "app"]), price_type="member")
        elif kind == 1:
            self.track(user, "account_bound", at, platform="wechat", openid=f"o-{user}")
        elif kind == 2:
            self.track(user, "event_rsvp", at, event_id="e-1")
        else:
            self.track(user, "coupon_redeemed", at, pool=self.rng.choice(["LENS_TRIAL_STORE", "CART_5OFF"]),
                       code="x", store_id="s-1")


def generate(seed: int = 2) -> list[Message]:
    """Every user identified at the start, then a few of the examples' stories each."""
    mix = Mix(seed)
    stories = [mix.cart, mix.care_solution, mix.signup, mix.referrer, mix.others]
    for index in range(USERS):
        user = mix.person(index)
        for k in range(3):
            stories[(index + k) % len(stories)](user, mix.moment())
    mix.lapsed("u03", START + 2 * DAY)
    return mix.messages


def arrival(message: Message) -> datetime:
    return message.received_at if isinstance(message, ReceivedMessage) else message.timestamp


# --------------------------------------------------------------------------- (b) the live engine


def stock_coupon_pools(db: Engine, now: datetime) -> None:
    """The pools the journeys use, with the codes `simulate` puts in them."""
    pools = sorted({node.pool for source in SOURCES for node in compile_source(source).nodes.values()
                    if isinstance(node, g.CouponNode)})
    with writer(db).begin() as conn:
        for name in pools:
            pool_id = conn.execute(insert(coupon_pools).values(name=name, created_at=now)
                                   .returning(coupon_pools.c.id)).scalar_one()
            conn.execute(insert(coupon_codes), [{"pool_id": pool_id, "code": f"{name}-{i:04d}"}
                                                for i in range(1, SIMULATED_CODES_PER_POOL + 1)])


class Dispatcher:
    """Stands in for the dispatcher: every webhook that waits for a reply gets `simulate`'s
    reply at once. Nothing else is sent, so the outbox stays as the engine wrote it."""

    def __init__(self, db: Engine) -> None:
        self.db, self.seen = db, 0

    def answer(self, now: datetime) -> bool:
        """Answer the webhooks queued since the last look; whether there were any."""
        with self.db.connect() as conn:
            rows = conn.execute(select(outbox.c.id, outbox.c.run_id, outbox.c.step_id, outbox.c.channel,
                                       outbox.c.payload).where(outbox.c.id > self.seen).order_by(outbox.c.id)).all()
        self.seen = rows[-1].id if rows else self.seen
        waiting = [r for r in rows if r.channel == "webhook" and r.payload.get("await_reply")]
        if waiting:
            with writer(self.db).begin() as conn:
                for row in waiting:
                    deliver_reply(conn, row.run_id, row.step_id, SIMULATED_REPLY, now)
        return bool(waiting)


def next_moment(runtime: Runtime, queue: deque[Message], now: datetime) -> datetime | None:
    """When the next message arrives or the next timer or tick falls due, up to UNTIL."""
    due = [t for t in (runtime.next_timer_due(), runtime.next_schedule_due()) if t is not None]
    assert all(t > now for t in due), "something due now was left undone"
    found = [t for t in [*due, *(arrival(m) for m in list(queue)[:1])] if t <= UNTIL]
    return min(found, default=None)


def run_live(db: Engine, messages: list[Message]) -> None:
    """The messages through a Runtime as a server runs it: the clock moves to each instant where
    something happens; the messages arriving then are accepted; then the engine loop's passes
    (and the replies they call for) until one finds nothing to do."""
    queue = deque(sorted(messages, key=arrival))
    clock = VirtualClock(arrival(queue[0]))
    runtime = Runtime(db, clock)
    try:
        for source in SOURCES:
            runtime.publish(source)
        stock_coupon_pools(db, clock.now())
        loop = EngineLoop(runtime, db, clock, nullcontext(), batch=500, idle_seconds=0)
        dispatcher = Dispatcher(db)
        while (moment := next_moment(runtime, queue, clock.now())) is not None:
            clock.move_to(moment)
            while queue and arrival(queue[0]) <= moment:
                runtime.accept([queue.popleft()])
            while True:
                busy = loop.run_once()
                if not dispatcher.answer(clock.now()) and not busy:
                    break
    finally:
        runtime.close()


# --------------------------------------------------------------------------- what both decided


def users(db: Engine) -> dict[int, str]:
    with db.connect() as conn:
        return dict(conn.execute(select(identities.c.profile_id, identities.c.value)
                                 .where(identities.c.kind == "user_id")).all())


def actions(db: Engine) -> list[Row]:
    """Every outbox row, in the order written: (send_at, user, journey, step, channel, status,
    text, template, pool)."""
    who = users(db)
    with db.connect() as conn:
        rows = conn.execute(select(outbox, journeys.c.slug).join(journeys, journeys.c.id == outbox.c.journey_id)
                            .order_by(outbox.c.id)).all()
    return [(r.send_at, who[r.profile_id], r.slug, r.step_id, r.channel, r.status,
             r.payload.get("text"), r.payload.get("template"), r.payload.get("pool")) for r in rows]


def runs(db: Engine) -> list[Row]:
    """Where every run is: (user, journey, entered at, state, step), in a stable order."""
    who = users(db)
    with db.connect() as conn:
        rows = conn.execute(select(journey_runs, journeys.c.slug)
                            .join(journeys, journeys.c.id == journey_runs.c.journey_id)).all()
    return sorted((who[r.profile_id], r.slug, r.entered_at, r.state, r.step_id or "") for r in rows)


@pytest.fixture(scope="module")
def simulated() -> tuple[list[dict[str, Any]], list[Row], list[Row]]:
    """(a): `simulate`'s output lines, and the actions and runs in its throwaway database."""
    made: list[simulation.Simulation] = []

    class Recorded(simulation.Simulation):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulation, "Simulation", Recorded)
        lines = simulate(SOURCES, generate(), until=UNTIL)
    (done,) = made
    return lines, actions(done.db), runs(done.db)


def test_the_mix_hits_the_cases_where_order_decides() -> None:
    messages = generate()
    late = [m for m in messages if arrival(m) > m.timestamp]
    assert len(late) >= 5
    arrivals = [arrival(m) for m in messages]
    assert len(set(arrivals)) < len(arrivals)  # messages sharing an instant
    assert max(arrivals) < UNTIL  # `simulate` applies every message; the live run stops at UNTIL
    assert {m.event for m in messages if m.type == "track"} >= {
        "add_to_cart", "cart_viewed", "purchase", "product_viewed", "signup", "coupon_redeemed",
        "points_credited", "points_redeemed", "account_bound", "event_rsvp"}


def test_simulate_reports_exactly_the_actions_it_decided(
        simulated: tuple[list[dict[str, Any]], list[Row], list[Row]]) -> None:
    lines, sim_actions, sim_runs = simulated
    slugs = {slugify(compile_source(source).name) for source in SOURCES}
    assert {row[2] for row in sim_actions} == slugs - {"lifecycle-stages"}  # it sends only to the loyal
    assert {row[1] for row in sim_runs} == slugs
    reported = sorted((line["at"], line["user_id"], line["journey"], line["step"]) for line in lines)
    assert reported == sorted((row[0].isoformat(), row[1], row[2], row[3]) for row in sim_actions)


def test_the_live_engine_decides_the_same(db: Engine,
                                          simulated: tuple[list[dict[str, Any]], list[Row], list[Row]]) -> None:
    _, sim_actions, sim_runs = simulated
    run_live(db, generate())
    assert actions(db) == sim_actions
    assert runs(db) == sim_runs


def test_the_live_engine_decides_the_same_whatever_its_row_ids(
        db: Engine, simulated: tuple[list[dict[str, Any]], list[Row], list[Row]]) -> None:
    """With ids offset so that the examples' version ids cross from one digit to two (as on a
    long-lived database): the order in which one input's journeys act, which decides what a
    frequency cap lets through, must not depend on how the ids read as text."""
    _, sim_actions, sim_runs = simulated
    clock = VirtualClock(START - timedelta(days=1))
    earlier = Runtime(db, clock)
    try:
        for n in range(5):
            earlier.publish(f'journey "Earlier {n}"\n  trigger api\n\n  send sms "never"\n')
    finally:
        earlier.close()
    run_live(db, generate())
    assert actions(db) == sim_actions
    assert runs(db) == sim_runs
