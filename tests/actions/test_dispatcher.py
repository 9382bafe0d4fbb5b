"""The dispatcher against real loopback providers and real SQLite and PostgreSQL: what becomes
of each outbox row, and that none is ever sent twice."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from actions import outbox as store
from actions.dispatcher import BatchReport, Dispatcher
from actions.errors import RetryableFailure
from actions.providers import build_provider
from actions.providers.base import Delivery, Provider, Receipt
from actions.settings import Settings
from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime
from storage.tables import outbox
from tests.actions.conftest import (
    HANG_TIMEOUT,
    NOW,
    Rows,
    Served,
    settings,
    sms,
    twilio_settings,
    webhook_settings,
)


def dispatch(db: Engine, config: Settings, clock: VirtualClock, rounds: int = 1,
             providers: dict[str, Provider] | None = None) -> list[BatchReport]:
    async def go() -> list[BatchReport]:
        async with Dispatcher(db, config, clock, providers=providers, rng=random.Random(4)) as dispatcher:
            return [await dispatcher.dispatch_once() for _ in range(rounds)]

    return asyncio.run(go())


def row(db: Engine, outbox_id: int) -> Any:
    with db.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.id == outbox_id)).one()


# --------------------------------------------------------------------------- what is sent, and when


def test_due_rows_are_sent_rendered_at_send_time(db: Engine, rows: Rows, twilio: Served) -> None:
    text = "Hi {{ user.first_name }}, thanks for the {{ event.category }}: code {{ trial.code }}"
    due = rows.add("sms", sms(text, {"trial": {"code": "LENS-42"}}),
                   {"phone": "+8613800000001", "first_name": "Li"}, event={"category": "care_solution"})
    later = rows.add("sms", sms("later"), send_at=NOW + timedelta(hours=1))
    suppressed = rows.add("sms", sms("capped"), status="suppressed")
    coupon = rows.add("coupon", {"pool": "LENS", "code": "LENS-42"}, status="sent")

    [report] = dispatch(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW))

    assert report.statuses == {"sent": 1}
    [received] = twilio.remote.received
    assert received["Body"] == "Hi Li, thanks for the care_solution: code LENS-42"
    assert received["To"] == "+8613800000001"
    sent = row(db, due)
    assert (sent.status, sent.attempts, sent.provider, sent.sent_at) == ("sent", 1, "twilio", NOW)
    assert sent.provider_message_id.startswith("SM")
    assert sent.lease_until is None
    assert [row(db, i).status for i in (later, suppressed, coupon)] == ["pending", "suppressed", "sent"]


def test_a_message_deferred_by_quiet_hours_goes_when_its_time_comes(db: Engine, rows: Rows, twilio: Served) -> None:
    later = rows.add("sms", sms("good morning"), send_at=NOW + timedelta(hours=9))
    clock = VirtualClock(NOW)
    config = settings(sms=twilio_settings(twilio.url))
    assert dispatch(db, config, clock)[0].claimed == 0
    clock.move_to(NOW + timedelta(hours=9))
    assert dispatch(db, config, clock)[0].statuses == {"sent": 1}
    assert row(db, later).sent_at == NOW + timedelta(hours=9)


def test_a_template_error_fails_that_message_only(db: Engine, rows: Rows, twilio: Served) -> None:
    broken = rows.add("sms", sms("{{ user.first_name | nosuchfilter }}"))
    endless = rows.add("sms", sms("{% for i in range(10**9) %}x{% endfor %}"))
    fine = [rows.add("sms", sms(f"message {i}")) for i in range(3)]

    [report] = dispatch(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW))

    assert report.statuses == {"sent": 3, "failed": 2}
    assert "nosuchfilter" in row(db, broken).last_error
    assert row(db, endless).last_error.startswith("message: template error")
    assert "range" in row(db, endless).last_error.lower()
    assert all(row(db, i).status == "sent" for i in fine)
    assert sorted(r["Body"] for r in twilio.remote.received) == ["message 0", "message 1", "message 2"]


def test_named_templates_come_from_the_settings(db: Engine, rows: Rows, fcm: Served) -> None:
    payload = {"text": None, "template": "lens_intro", "title": None, "results": {}}
    known = rows.add("push", payload, {"push_token": "tok-1", "first_name": "Wang"})
    unknown = rows.add("push", {**payload, "template": "nope"}, {"push_token": "tok-2"})
    config = settings(
        push={"provider": "fcm", "fcm": {"project_id": "demo", "access_token": "fcm-access-token",
                                         "base_url": fcm.url}},
        templates={"lens_intro": {"title": "Meet our lenses", "text": "Hi {{ user.first_name }}, try a pair."}})

    dispatch(db, config, VirtualClock(NOW))

    [received] = fcm.remote.received
    assert received["message"]["notification"] == {"title": "Meet our lenses", "body": "Hi Wang, try a pair."}
    assert row(db, known).status == "sent"
    failed = row(db, unknown)
    assert failed.status == "failed"
    assert "unknown template 'nope'" in failed.last_error


def test_a_profile_without_a_phone_fails_with_the_reason(db: Engine, rows: Rows, twilio: Served) -> None:
    nobody = rows.add("sms", sms("hello"), {"first_name": "Li"})
    dispatch(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW))
    assert (row(db, nobody).status, row(db, nobody).last_error) == (
        "failed", f"profile {row(db, nobody).profile_id} has no phone: nothing to send the sms to")
    assert twilio.remote.received == []


def test_a_refusal_fails_the_message_with_the_providers_words(db: Engine, rows: Rows, twilio: Served) -> None:
    bad = rows.add("sms", sms("hello"), {"phone": "12345"})
    dispatch(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW))
    assert row(db, bad).status == "failed"
    assert "21211" in row(db, bad).last_error


# --------------------------------------------------------------------------- retries


def test_a_5xx_is_retried_with_backoff_then_sent(db: Engine, rows: Rows, twilio: Served) -> None:
    twilio.remote.script = ["503"]
    message = rows.add("sms", sms("hello"))
    clock = VirtualClock(NOW)
    config = settings(sms=twilio_settings(twilio.url), dispatch={"retry": {"base_seconds": 60}})

    assert dispatch(db, config, clock)[0].statuses == {"deferred": 1}
    deferred = row(db, message)
    assert NOW + timedelta(seconds=30) <= deferred.next_attempt_at <= NOW + timedelta(seconds=60)
    assert "HTTP 503" in deferred.last_error

    clock.move_to(deferred.next_attempt_at - timedelta(seconds=1))
    assert dispatch(db, config, clock)[0].claimed == 0  # not before its time
    clock.move_to(deferred.next_attempt_at)
    [report] = dispatch(db, config, clock)
    assert (report.statuses, report.retries) == ({"sent": 1}, 1)
    assert (row(db, message).status, row(db, message).attempts) == ("sent", 2)
    assert len(twilio.remote.received) == 2


def test_a_429_waits_exactly_as_long_as_retry_after_says(db: Engine, rows: Rows, twilio: Served) -> None:
    twilio.remote.script = ["429:120"]
    message = rows.add("sms", sms("hello"))
    dispatch(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW))
    assert (row(db, message).status, row(db, message).next_attempt_at) == ("deferred", NOW + timedelta(seconds=120))


def test_after_the_last_attempt_a_message_is_dead_until_retried_by_hand(db: Engine, rows: Rows,
                                                                        twilio: Served) -> None:
    twilio.remote.script = ["500", "502", "503"]
    message = rows.add("sms", sms("hello"))
    clock = VirtualClock(NOW)
    config = settings(sms=twilio_settings(twilio.url), dispatch={"retry": {"max_attempts": 3, "base_seconds": 1}})
    for _ in range(3):
        dispatch(db, config, clock)
        clock.move_to(clock.now() + timedelta(minutes=1))
    dead = row(db, message)
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert dead.last_error.startswith("gave up after 3 attempts: twilio: HTTP 503")
    assert dispatch(db, config, clock)[0].claimed == 0

    with db.begin() as conn:
        assert store.retry(conn, clock.now()) == 1
    assert dispatch(db, config, clock)[0].statuses == {"sent": 1}
    assert (row(db, message).status, row(db, message).attempts) == ("sent", 1)
    assert len(twilio.remote.received) == 4


# --------------------------------------------------------------------------- exactly once


def test_a_timeout_after_sending_is_uncertain_without_an_idempotency_key(db: Engine, rows: Rows,
                                                                         twilio: Served) -> None:
    twilio.remote.script = ["hang"]
    message = rows.add("sms", sms("hello"))
    clock = VirtualClock(NOW)
    config = settings(sms=twilio_settings(twilio.url, timeout_seconds=HANG_TIMEOUT))
    assert dispatch(db, config, clock)[0].statuses == {"uncertain": 1}
    assert "may have been delivered" in row(db, message).last_error
    clock.move_to(NOW + timedelta(days=1))
    assert dispatch(db, config, clock)[0].claimed == 0
    assert len(twilio.remote.received) == 1


def test_a_timeout_after_sending_is_retried_under_the_same_key_where_supported(db: Engine, rows: Rows,
                                                                               receiver: Served) -> None:
    receiver.remote.script = ["hang"]
    receiver.remote.now = lambda: clock.now()
    call = rows.add("webhook", {"url": f"{receiver.url}/points", "body": {"points": 200}})
    clock = VirtualClock(NOW)
    assert dispatch(db, settings(webhook=webhook_settings(timeout_seconds=HANG_TIMEOUT)), clock)[0].statuses == {
        "deferred": 1}
    clock.move_to(row(db, call).next_attempt_at)
    assert dispatch(db, settings(webhook=webhook_settings()), clock)[0].statuses == {"sent": 1}
    first, second = receiver.remote.received
    assert first["key"] == second["key"] == row(db, call).idempotency_key


def _interrupted_send(db: Engine, config: Settings, clock: VirtualClock) -> None:
    """A dispatcher claims and sends, then dies before recording anything."""

    async def go() -> None:
        async with Dispatcher(db, config, clock) as dispatcher:
            claimed = store.claim(db, clock.now(), 10, timedelta(seconds=config.dispatch.lease_seconds),
                                  dispatcher.unsafe_to_repeat())
            gate = asyncio.Semaphore(1)
            for claimed_row in claimed:
                await dispatcher._deliver(claimed_row, gate)
            # ...and here the process was killed: nothing recorded, leases still held.

    asyncio.run(go())


def test_a_crash_between_send_and_commit_leaves_uncertain_or_resends_under_the_key(
        db: Engine, rows: Rows, twilio: Served, receiver: Served) -> None:
    text = rows.add("sms", sms("hello"))
    call = rows.add("webhook", {"url": f"{receiver.url}/crm", "body": {"tier": "super"}})
    clock = VirtualClock(NOW)
    receiver.remote.now = clock.now
    config = settings(sms=twilio_settings(twilio.url), webhook=webhook_settings(),
                      dispatch={"lease_seconds": 60})
    _interrupted_send(db, config, clock)
    assert len(twilio.remote.received) == len(receiver.remote.received) == 1

    assert dispatch(db, config, clock)[0].claimed == 0  # the leases still hold
    clock.move_to(NOW + timedelta(seconds=61))
    [report] = dispatch(db, config, clock)

    assert report.statuses == {"sent": 1}
    assert row(db, text).status == "uncertain"
    assert "stopped while sending" in row(db, text).last_error
    assert len(twilio.remote.received) == 1  # never sent blindly again
    assert (row(db, call).status, row(db, call).attempts) == ("sent", 2)
    assert receiver.remote.keys() == [row(db, call).idempotency_key] * 2
    assert [r["first"] for r in receiver.remote.received] == [True, False]  # the receiver acted once


# The tests of several dispatchers are about claims, not timeouts. Even conftest's generous
# request timeout is a wall-clock deadline, and a webhook that times out is rightly deferred
# to a retry 15 to 30 s ahead, on a VirtualClock that never gets there: the dispatchers would
# then rightly stop idle with rows unsent. Their requests get a deadline no loopback request nears.
UNHURRIED = webhook_settings(timeout_seconds=60)


def unsent(db: Engine) -> list[Any]:
    """Rows not sent at their first attempt, with why: what a failure below shows first."""
    with db.connect() as conn:
        return list(conn.execute(select(outbox.c.id, outbox.c.status, outbox.c.attempts, outbox.c.last_error)
                                 .where((outbox.c.status != "sent") | (outbox.c.attempts != 1))).all())


def test_two_dispatchers_at_once_send_every_row_exactly_once(db: Engine, rows: Rows, receiver: Served) -> None:
    ids = [rows.add("webhook", {"url": f"{receiver.url}/n", "body": {"n": i}}) for i in range(240)]
    config = settings(webhook=UNHURRIED, dispatch={"batch_size": 20, "concurrency": 10})
    clock = VirtualClock(NOW)
    failures: list[BaseException] = []

    def worker() -> None:
        async def go() -> None:
            async with Dispatcher(db, config, clock) as dispatcher:
                await dispatcher.run(until_idle=True)

        try:
            asyncio.run(go())
        except BaseException as error:  # re-raised in the test thread below
            failures.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()  # each run ends: every request has its timeout, and a run stops when nothing is due
    assert failures == []
    assert unsent(db) == []
    keys = receiver.remote.keys()
    assert len(keys) == len(set(keys)) == len(ids)
    with db.connect() as conn:
        assert set(conn.execute(select(outbox.c.status, outbox.c.attempts)).all()) == {("sent", 1)}


class Held:
    """The real webhook provider, holding every send until `release` is set: a dispatcher
    stopped at a precise point, its batch claimed (leased) and not yet sent."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name, self.idempotent = provider.name, provider.idempotent
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, delivery: Delivery) -> Receipt:
        self.holding.set()
        await self.release.wait()
        return await self.provider.send(delivery)

    async def aclose(self) -> None:
        await self.provider.aclose()


def test_a_dispatcher_beside_one_that_holds_claimed_rows_stops_idle_and_leaves_them_to_it(
        db: Engine, rows: Rows, receiver: Served) -> None:
    """`until_idle` stops when nothing is *due*: rows a sibling has claimed are leased to it, and
    that sibling sends and records them before it claims again, so the other may stop without
    waiting for them and none is left behind."""
    ids = [rows.add("webhook", {"url": f"{receiver.url}/n", "body": {"n": i}}) for i in range(12)]
    config = settings(webhook=UNHURRIED, dispatch={"batch_size": 5, "concurrency": 5})
    clock = VirtualClock(NOW)

    async def go() -> tuple[Counter[str], list[Any], Counter[str]]:
        held = Held(build_provider("webhook", config, clock))
        async with Dispatcher(db, config, clock, providers={"webhook": held}) as slow, \
                Dispatcher(db, config, clock) as quick:
            slow_run = asyncio.create_task(slow.run(until_idle=True))
            await held.holding.wait()  # the slow one has claimed its first batch, and holds it
            quick_total = await quick.run(until_idle=True)
            with db.connect() as conn:
                still_held = list(conn.execute(select(outbox.c.status, outbox.c.attempts)
                                               .where(outbox.c.lease_until.is_not(None))).all())
            held.release.set()
            return quick_total, still_held, await slow_run

    quick_total, still_held, slow_total = asyncio.run(go())
    assert still_held == [("pending", 1)] * 5  # the quick one stopped while the slow one held its batch
    assert (quick_total, slow_total) == ({"sent": 7}, {"sent": 5})
    assert unsent(db) == []
    keys = receiver.remote.keys()
    assert len(keys) == len(set(keys)) == len(ids)


# --------------------------------------------------------------------------- other channels


def test_webhooks_to_internal_addresses_are_refused_unless_allowed(db: Engine, rows: Rows, receiver: Served) -> None:
    call = rows.add("webhook", {"url": f"{receiver.url}/admin", "body": {}})
    strict = settings(webhook=webhook_settings(), guard={"allow_private": False})
    dispatch(db, strict, VirtualClock(NOW))
    refused = row(db, call)
    assert refused.status == "failed"
    assert "127.0.0.1, a loopback address" in refused.last_error
    assert receiver.remote.received == []


def test_the_webhook_url_may_be_a_template(db: Engine, rows: Rows, receiver: Served) -> None:
    receiver.remote.now = lambda: NOW
    rows.add("webhook", {"url": receiver.url + "/stores/{{ user.region }}", "body": {"a": 1}}, {"region": "sh"})
    dispatch(db, settings(webhook=webhook_settings()), VirtualClock(NOW))
    assert [r["path"] for r in receiver.remote.received] == ["/stores/sh"]


def test_by_default_every_channel_is_logged_not_sent(db: Engine, rows: Rows, caplog: pytest.LogCaptureFixture) -> None:
    first = rows.add("sms", sms("hello {{ user.first_name }}"), {"phone": "+8613800000009", "first_name": "Li"})
    rows.add("push", sms("hi"), {"push_token": "t"})
    rows.add("webhook", {"url": "https://points.example.com/v1", "body": {"x": 1}})
    caplog.set_level("INFO", logger="journeyflow.deliveries")
    [report] = dispatch(db, Settings(), VirtualClock(NOW))
    assert report.statuses == {"sent": 3}
    logged = row(db, first)
    assert (logged.provider, logged.provider_message_id) == ("log", f"log:{logged.idempotency_key}")
    assert "sms to +8613800000009" in caplog.text
    assert "hello Li" in caplog.text


# --------------------------------------------------------------------------- replies to waiting steps

POINTS = '''journey "Points"
  trigger event "signup"

  @credit call webhook "{url}/credits" with {{"member": event.member}} as credit
  @thanks send sms "{{{{ credit.status }}}} {{{{ credit.body.ok }}}}"
'''


def test_a_webhook_reply_reaches_the_step_that_waits_for_it(db: Engine, receiver: Served) -> None:
    receiver.remote.now = lambda: NOW
    clock = VirtualClock(NOW)
    runtime = Runtime(db, clock)
    runtime.publish(POINTS.format(url=receiver.url))
    runtime.accept([parse_message({"type": "track", "event": "signup", "userId": "u1", "messageId": "m1",
                                   "properties": {"member": "M-1"}, "timestamp": NOW.isoformat()}, NOW)])
    runtime.process_events()
    assert runtime.fire_due_timers() == 0  # waiting for the reply
    dispatch(db, settings(webhook=webhook_settings()), clock)
    assert [json.loads(r["body"]) for r in receiver.remote.received] == [{"member": "M-1"}]
    assert runtime.fire_due_timers() == 1  # the reply woke it
    with db.connect() as conn:
        thanks = conn.execute(select(outbox).where(outbox.c.step_id == "thanks")).one()
    assert thanks.payload["results"] == {"credit": {"status": 200, "body": {"ok": True}}}


def test_a_webhook_that_fails_for_good_wakes_its_step_with_the_failure(db: Engine, receiver: Served) -> None:
    clock = VirtualClock(NOW)
    runtime = Runtime(db, clock)
    runtime.publish(POINTS.format(url=receiver.url))
    runtime.accept([parse_message({"type": "track", "event": "signup", "userId": "u1", "messageId": "m1",
                                   "timestamp": NOW.isoformat()}, NOW)])
    runtime.process_events()
    strict = settings(webhook=webhook_settings(), guard={"allow_private": False})  # refused: loopback
    dispatch(db, strict, clock)
    assert runtime.fire_due_timers() == 1
    with db.connect() as conn:
        thanks = conn.execute(select(outbox).where(outbox.c.step_id == "thanks")).one()
    assert thanks.payload["results"]["credit"]["status"] == "failed"
    assert "loopback" in thanks.payload["results"]["credit"]["error"]


# --------------------------------------------------------------------------- the pipelined run


class Timed:
    """A provider in process: each send takes a few milliseconds of real time, one in seven
    answers 503, and it notes what it was given, when, how many sends were in flight, and how
    many rows the outbox held leased at that moment."""

    name, idempotent = "timed", True

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.keys: list[str] = []
        self.started: list[float] = []
        self.in_flight = self.most_in_flight = self.most_leased = 0
        self.rng = random.Random(18)

    async def send(self, delivery: Delivery) -> Receipt:
        self.keys.append(delivery.key)
        self.started.append(time.monotonic())
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if len(self.keys) % 5 == 0:
            with self.db.connect() as conn:
                leased = conn.execute(select(func.count()).select_from(outbox)
                                      .where(outbox.c.lease_until.is_not(None))).scalar_one()
            self.most_leased = max(self.most_leased, leased)
        try:
            await asyncio.sleep(self.rng.uniform(0.001, 0.006))
            if self.rng.random() < 1 / 7:
                raise RetryableFailure("timed: HTTP 503")
            return Receipt(f"timed:{delivery.key}")
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None


def test_the_pipelined_run_sends_each_row_once_within_the_window_and_the_rate(db: Engine, rows: Rows) -> None:
    """`run` claims the next batch while the last sends of the current one are in flight: every
    row is still sent once per attempt and recorded, never more than `concurrency` sends are in
    flight across the batches, at most two batches are held, and the channel's token bucket
    paces the sends of both."""
    ids = [rows.add("sms", sms(f"hello {i}")) for i in range(150)]
    rate, burst, batch, window = 600.0, 4, 12, 8  # the bucket, not the sends, sets the pace
    config = settings(sms={"rate_per_second": rate, "burst": burst},
                      dispatch={"batch_size": batch, "concurrency": window, "retry": {"base_seconds": 60}})
    provider = Timed(db)

    async def go() -> Counter[str]:
        async with Dispatcher(db, config, VirtualClock(NOW), providers={"sms": provider}) as dispatcher:
            return await dispatcher.run(until_idle=True)

    total = asyncio.run(go())

    with db.connect() as conn:
        final = {r.id: r for r in conn.execute(select(outbox)).all()}
    assert sum(total.values()) == len(ids) == len(provider.keys)
    assert total == Counter(r.status for r in final.values())  # every outcome was recorded
    assert set(total) == {"sent", "deferred"} and total["deferred"] > 0
    assert len(set(provider.keys)) == len(ids)  # no row was sent twice
    assert all(r.attempts == 1 and r.lease_until is None for r in final.values())
    assert provider.most_in_flight <= window
    assert batch < provider.most_leased <= 2 * batch  # a second batch claimed, never a third
    start = provider.started[0]
    for sent, moment in enumerate(provider.started, start=1):  # never faster than the bucket allows
        assert sent <= burst + (moment - start) * rate + 1
