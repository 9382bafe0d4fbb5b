"""The dispatcher: sends what the engine put in the outbox, each row once.

A loop of batches. Each batch claims due rows (actions/outbox.py says how that is safe with
several dispatchers and across crashes), builds every message (actions/compose.py, in a worker
thread, away from the event loop), sends them concurrently (at most `concurrency` requests in
flight, each provider under its own rate limit), and records all outcomes in one transaction:

- accepted by the provider: `sent`, with the provider's message id;
- retryable (connect error, 5xx, 429, a timeout where the provider deduplicates): `deferred`
  until `next_attempt_at`, or `dead` after `max_attempts`;
- refused (4xx), or the message cannot be built (template error, no recipient, unsafe URL):
  `failed`;
- may have gone out, and the provider cannot deduplicate: `uncertain`.

A 429 also holds the provider's whole bucket shut for its Retry-After. A row whose lease is
about to end before its turn comes is released unsent rather than risk a second dispatcher
sending it too.

`run` overlaps batches (see its docstring): the next is claimed while the last sends of the
current one are in flight, and claims and records run in worker threads, so the database's
waits do not stop the sends. `dispatch_once` is one batch from claim to record, alone.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine

from engine.clock import Clock, SystemClock

from . import outbox
from .backoff import retry_delay
from .compose import compose
from .errors import MessageInvalid, PermanentFailure, RetryableFailure, UncertainOutcome
from .outbox import Claimed, Outcome
from .providers import PROVIDERS, Delivery, Provider, build_provider
from .ratelimit import TokenBucket
from .settings import Settings

logger = logging.getLogger("journeyflow.dispatch")


@dataclass
class Lane:
    """One channel's provider and the token bucket that paces it."""

    provider: Provider
    bucket: TokenBucket
    margin: timedelta  # a request must be able to finish this long before the lease ends


@dataclass
class BatchReport:
    claimed: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # attempts in this batch that were not a row's first


class Dispatcher:
    def __init__(self, db: Engine, settings: Settings, clock: Clock | None = None,
                 providers: Mapping[str, Provider] | None = None, rng: random.Random | None = None,
                 monotonic: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.db, self.settings = db, settings
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.sleep = sleep
        chosen = dict(providers or {})
        self.lanes: dict[str, Lane] = {}
        for channel in PROVIDERS:
            config = settings.channel(channel)
            provider = chosen.get(channel) or build_provider(channel, settings, self.clock)
            bucket = (TokenBucket(config.rate_per_second, config.burst, monotonic, sleep) if monotonic
                      else TokenBucket(config.rate_per_second, config.burst, sleep=sleep))
            self.lanes[channel] = Lane(provider, bucket, timedelta(seconds=config.timeout_seconds * 2))
        self._unsafe = frozenset(self.unsafe_to_repeat())
        self._db = asyncio.Lock()  # this dispatcher's claim and record, one at a time (see `_claim`)
        self._unfinished = 0  # rows claimed by running batches whose outcome is not known yet
        self._progress = asyncio.Event()  # set when a row or a batch finishes: `run` may claim again

    async def aclose(self) -> None:
        for lane in self.lanes.values():
            await lane.provider.aclose()

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def unsafe_to_repeat(self) -> set[str]:
        return {channel for channel, lane in self.lanes.items() if not lane.provider.idempotent}

    async def dispatch_once(self, limit: int | None = None) -> BatchReport:
        """Claim one batch, send it, record it. The report says what became of each row."""
        claimed = await self._claim(limit)
        if not claimed:
            return BatchReport()
        return await self._batch(claimed, asyncio.Semaphore(self.settings.dispatch.concurrency))

    async def run(self, until_idle: bool = False, stop: asyncio.Event | None = None) -> Counter[str]:
        """Dispatch batch after batch; with `until_idle`, stop when nothing is due.

        Pipelined: the next batch is claimed while the current one's last sends are in flight,
        as soon as the window has room for it (fewer unfinished rows than `concurrency`), so the
        window does not drain to nothing at the end of every batch while claiming, composing and
        recording happen one after the other. At most two batches are held at once, and a batch
        that fills the window is never joined by another: a dispatcher whose sends all hang holds
        one batch, not more. Every claimed row is sent and recorded before `run` returns, even
        when a batch fails or `stop` is set; nothing in flight is ever cancelled."""
        total: Counter[str] = Counter()
        running: set[asyncio.Task[BatchReport]] = set()
        gate = asyncio.Semaphore(self.settings.dispatch.concurrency)
        failures: list[BaseException] = []
        try:
            while stop is None or not stop.is_set():
                await self._room(running, total, failures)
                if failures or (stop is not None and stop.is_set()):
                    break
                claimed = await self._claim(None)
                if claimed:
                    running.add(asyncio.create_task(self._batch(claimed, gate)))
                elif running:  # what they record may be due again (a retry): claim once they are done
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                elif until_idle:
                    break
                else:
                    await self.sleep(self.settings.dispatch.poll_seconds)
        finally:
            if running:
                await asyncio.wait(running)
                self._reap(running, total, failures)
        if failures:
            raise failures[0]
        return total

    async def _room(self, running: set[asyncio.Task[BatchReport]], total: Counter[str],
                    failures: list[BaseException]) -> None:
        """Wait until another batch may be claimed: fewer than two held, and the window has room."""
        self._reap(running, total, failures)
        while running and not failures and (len(running) >= 2
                                            or self._unfinished >= self.settings.dispatch.concurrency):
            self._progress.clear()
            await self._progress.wait()
            self._reap(running, total, failures)

    @staticmethod
    def _reap(running: set[asyncio.Task[BatchReport]], total: Counter[str], failures: list[BaseException]) -> None:
        """Take the finished batches out of `running`, adding up their outcomes."""
        for task in [task for task in running if task.done()]:
            running.discard(task)
            error = task.exception()
            if error is not None:
                failures.append(error)
            else:
                total.update(task.result().statuses)

    async def _claim(self, limit: int | None) -> list[Claimed]:
        """Due rows, claimed in a worker thread: the statement waits for SQLite's one writer (or
        PostgreSQL's round trips) while this loop's sends go on. One database call of this
        dispatcher at a time (`_db`): an in-memory SQLite database is one shared connection."""
        policy = self.settings.dispatch
        async with self._db:
            claimed = await asyncio.to_thread(outbox.claim, self.db, self.clock.now(), limit or policy.batch_size,
                                              timedelta(seconds=policy.lease_seconds), self._unsafe)
        self._unfinished += len(claimed)  # counted down by `_counted` as each outcome is known
        return claimed

    async def _batch(self, claimed: list[Claimed], gate: asyncio.Semaphore) -> BatchReport:
        """Compose, send and record one claimed batch."""
        report = BatchReport(claimed=len(claimed))
        try:
            try:
                built = await asyncio.to_thread(self._compose_all, claimed)
            except BaseException:
                self._unfinished -= len(claimed)  # none of them will be counted by `_counted`
                raise
            outcomes = await asyncio.gather(*(self._counted(row, gate, message)
                                              for row, message in zip(claimed, built, strict=True)))
            async with self._db:
                await asyncio.to_thread(outbox.record, self.db, outcomes, self.clock.now())
        finally:
            self._progress.set()
        for row, outcome in zip(claimed, outcomes, strict=True):
            report.statuses[outcome.status] += 1
            if outcome.status not in ("sent", "pending"):  # a message that did not go out is news too
                logger.log(logging.INFO if outcome.status == "deferred" else logging.WARNING,
                           "%s %s/%s for profile %s %s: %s", row.channel, row.journey, row.step_id,
                           row.profile_id, outcome.status, outcome.error)
            if row.attempts > 1 and outcome.status != "pending":
                report.retries += 1
        return report

    async def _counted(self, row: Claimed, gate: asyncio.Semaphore, message: Delivery | MessageInvalid) -> Outcome:
        """`_deliver`, counting the row as finished (room in the window) once its outcome is known."""
        try:
            return await self._deliver(row, gate, message)
        finally:
            self._unfinished -= 1
            if self._unfinished < self.settings.dispatch.concurrency:
                self._progress.set()

    def _compose_all(self, rows: list[Claimed]) -> list[Delivery | MessageInvalid]:
        """Every message of the batch, or why it cannot be built. Run in a worker thread:
        rendering is the journey author's code, bounded (dsl.templates) but not free, and
        must never hold the event loop that takes intake and health checks."""
        built: list[Delivery | MessageInvalid] = []
        for row in rows:
            try:
                built.append(compose(row, self.settings))
            except MessageInvalid as error:
                built.append(error)
        return built

    async def _deliver(self, row: Claimed, gate: asyncio.Semaphore,
                       message: Delivery | MessageInvalid | None = None) -> Outcome:
        """Send one row; `message` is what `_compose_all` built for it (built here when not given)."""
        outcome = await self._attempt(row, gate, message)
        if row.channel != "webhook" or not row.payload.get("await_reply"):
            return outcome
        # The run waits at this step for the answer: hand it over with the outcome, or tell it
        # the call failed for good, so it does not wait out the whole reply deadline.
        if outcome.status in ("sent", "failed", "dead", "uncertain"):
            reply = outcome.reply if outcome.status == "sent" else {"status": "failed", "error": outcome.error}
            return replace(outcome, reply=reply, run_id=row.run_id, step_id=row.step_id)
        return outcome

    async def _attempt(self, row: Claimed, gate: asyncio.Semaphore, message: Delivery | MessageInvalid | None
                       ) -> Outcome:
        lane = self.lanes.get(row.channel)
        if lane is None:
            return Outcome(row.id, row.attempts, "failed", f"no provider sends {row.channel!r} rows")
        provider = lane.provider
        if message is None:
            [message] = await asyncio.to_thread(self._compose_all, [row])
        if isinstance(message, MessageInvalid):
            return Outcome(row.id, row.attempts, "failed", str(message), provider=provider.name)
        delivery = message
        await lane.bucket.acquire()
        async with gate:
            if self.clock.now() >= row.lease_until - lane.margin:
                logger.warning("outbox %s: released unsent, its lease ends too soon (raise lease_seconds)", row.id)
                return Outcome(row.id, row.attempts, "pending")
            try:
                receipt = await provider.send(delivery)
            except RetryableFailure as error:
                if error.retry_after:
                    lane.bucket.hold(error.retry_after)
                return self._retry_or_dead(row, provider.name, str(error), error.retry_after)
            except PermanentFailure as error:
                return Outcome(row.id, row.attempts, "failed", str(error), provider=provider.name)
            except UncertainOutcome as error:
                return Outcome(row.id, row.attempts, "uncertain", str(error), provider=provider.name)
            except Exception as error:  # a bug in a provider must not lose the batch's outcomes
                logger.exception("outbox %s: unexpected error from provider %s", row.id, provider.name)
                reason = f"unexpected error in provider {provider.name}: {type(error).__name__}: {error}"
                if provider.idempotent:
                    return self._retry_or_dead(row, provider.name, reason, None)
                return Outcome(row.id, row.attempts, "uncertain", reason, provider=provider.name)
        return Outcome(row.id, row.attempts, "sent", provider=provider.name,
                       provider_message_id=receipt.provider_message_id, sent_at=self.clock.now(), reply=receipt.reply,
                       recipient=delivery.to, content=delivery.content)

    def _retry_or_dead(self, row: Claimed, provider: str, reason: str, retry_after: float | None) -> Outcome:
        policy = self.settings.dispatch.retry
        if row.attempts >= policy.max_attempts:
            return Outcome(row.id, row.attempts, "dead", f"gave up after {row.attempts} attempts: {reason}",
                           provider=provider)
        delay = retry_delay(row.attempts, retry_after, policy, self.rng)
        return Outcome(row.id, row.attempts, "deferred", reason, provider=provider,
                       next_attempt_at=self._now_plus(delay))

    def _now_plus(self, seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)
