"""Scale-out: the engine benchmark's workload on PostgreSQL with 1, 2 and 4 `journeyflow worker`
processes (arq on Redis), beside the embedded default (one process on SQLite) in the same run.

    python benchmarks/distributed.py            # 2,000 profiles, 20,000 events, 5,000 due timers
    python benchmarks/distributed.py --workers 1 2 4 8 --events 100000 --profiles 10000
    python benchmarks/distributed.py --smoke    # CI: a few hundred events, so this cannot rot

Per set-up, three phases on a fresh database with every example journey live:
1. drain: every event stored up front, then made visible at once; events/s until all are applied.
2. lag: new events fed at a steady rate, half the set-up's own drain rate (latency at half
   load: a rate the set-up can sustain, so the figure is latency, not a growing backlog);
   processing lag = applied at - received at, p50 and p99.
3. timers: extra users waiting at a `wait 1d` (bare SQL, not measured) all made due at once;
   timers fired per second until none of them is left.
Events reach the workers as they do behind `journeyflow serve --redis`: each commit pushes its
partitions' jobs (workers/push.py); the sweep is only the safety net. Beside them, in the same
run, the raw psycopg floor of benchmarks/engine.py (the same storage work on the bare driver,
one process): issue 18 asks 2 workers for half of it.
Needs PostgreSQL (JOURNEYFLOW_TEST_PG_URL or the local default) and Redis
(JOURNEYFLOW_TEST_REDIS_URL or redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, func, make_url, select, text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.engine import (  # noqa: E402
    PG_URL,
    TIMER_JOURNEY,
    add_waiting_runs,
    fresh,
    generate,
    percentile,
    run_floor,
    stock_coupon_pools,
)
from engine.clock import SystemClock  # noqa: E402
from engine.messages import Message  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from storage import connect, migrate  # noqa: E402
from storage.tables import events, timers  # noqa: E402
from workers import health  # noqa: E402
from workers.push import Pusher  # noqa: E402

REDIS_URL = os.environ.get("JOURNEYFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ACCEPT_CHUNK = 500
HIDDEN = datetime(1970, 1, 1, tzinfo=UTC)  # processed_at that keeps stored events out of sight until the drain
POLL = 0.05  # seconds between looks at the database while waiting
PHASE_TIMEOUT = 600.0  # seconds any phase may take before the benchmark gives up
PARTITIONS, CONCURRENCY, BATCH = 8, 4, 500


@dataclasses.dataclass
class Figures:
    label: str
    events: int
    events_per_s: float
    lag_events: int
    lag_rate: float  # events/s fed in the lag phase
    lag_p50_s: float
    lag_p99_s: float
    timers: int
    timers_per_s: float


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(POLL)


def unapplied(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(events).where(events.c.processed_at.is_(None))) or 0)


def renamed(messages: list[Message], prefix: str) -> list[Message]:
    """The same messages under new ids (the engine drops a repeated message id)."""
    return [dataclasses.replace(m, message_id=f"{prefix}{m.message_id}") for m in messages]


def publish_examples(db: Engine, codes: int) -> Runtime:
    """Every example journey live, and their coupon pools stocked, as the engine benchmark does."""
    runtime = Runtime(db, SystemClock())
    for path in sorted((ROOT / "examples/journeys").glob("*.journey")):
        runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
    stock_coupon_pools(db, runtime, codes)
    return runtime


def store_hidden(runtime: Runtime, db: Engine, messages: list[Message]) -> None:
    """Store every message, kept from the engine until `reveal`: the drain then starts at once."""
    for start in range(0, len(messages), ACCEPT_CHUNK):
        runtime.accept(messages[start:start + ACCEPT_CHUNK])
        with db.begin() as conn:
            conn.execute(update(events).where(events.c.processed_at.is_(None)).values(processed_at=HIDDEN))


def reveal(db: Engine) -> float:
    with db.begin() as conn:
        conn.execute(update(events).where(events.c.processed_at == HIDDEN).values(processed_at=None))
    return time.perf_counter()


def feed(runtime: Runtime, messages: list[Message], rate: float, lock: threading.Lock | None = None) -> None:
    """Accept `messages` at `rate` per second, in chunks a tenth of a second apart."""
    chunk = max(1, round(rate / 10))
    began = time.perf_counter()
    for i, start in enumerate(range(0, len(messages), chunk)):
        pause = began + i * chunk / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        if lock is None:
            runtime.accept(messages[start:start + chunk])
        else:
            with lock:
                runtime.accept(messages[start:start + chunk])


def lags(db: Engine, prefix: str) -> list[float]:
    with db.connect() as conn:
        rows = conn.execute(select(events.c.received_at, events.c.processed_at)
                            .where(events.c.message_id.like(f"{prefix}%"))).all()
    return [(processed - received).total_seconds() for received, processed in rows]


def due_timers(db: Engine, moment: datetime) -> int:
    with db.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(timers).where(timers.c.due_at <= moment)) or 0)


def make_due(db: Engine, runtime: Runtime, count: int, progress: Progress) -> tuple[int, datetime, float]:
    """`count` extra users waiting with a timer, then every timer due at once; (due, at, started)."""
    add_waiting_runs(db, runtime.publish(TIMER_JOURNEY, slug="timer-bench"), count, progress)
    moment = datetime.now(UTC)
    with db.begin() as conn:
        conn.execute(update(timers).values(due_at=moment - timedelta(seconds=1)))
    return due_timers(db, moment), moment, time.perf_counter()


# --------------------------------------------------------------------------- embedded SQLite


def run_embedded(url: str, messages: list[Message], lag_source: Callable[[float], list[Message]],
                 extra_timers: int, progress: Progress) -> Figures:
    """The embedded default: one process, the engine loop `journeyflow serve` runs, on SQLite.
    Returns its figures."""
    from api.engine_loop import EngineLoop

    db = fresh(url)
    runtime = publish_examples(db, len(messages))
    store_hidden(runtime, db, messages)
    began = reveal(db)
    while runtime.process_events(BATCH):
        pass
    drain = time.perf_counter() - began
    rate = len(messages) / drain / 2
    lag_messages = lag_source(rate)

    lock = threading.Lock()
    loop = EngineLoop(runtime, db, SystemClock(), lock, 200, 0.2)  # serve's defaults (api/settings.py)
    runtime.on_accepted = loop.wake  # as serve wires it: a commit wakes the loop from its idle pause
    loop.start()
    feed(runtime, lag_messages, rate, lock)
    wait_for(lambda: unapplied(db) == 0, "the embedded engine to apply the fed events")
    loop.stop()
    lag = lags(db, "lag-")

    due, moment, started = make_due(db, runtime, extra_timers, progress)
    while runtime.fire_due_timers(BATCH):
        pass
    wait_for(lambda: due_timers(db, moment) == 0, "the embedded timers")
    timer_time = time.perf_counter() - started
    db.dispose()
    return Figures("SQLite, embedded (1 process)", len(messages), len(messages) / drain, len(lag),
                   rate, percentile(lag, 0.5), percentile(lag, 0.99), due, due / timer_time)


# --------------------------------------------------------------------------- workers


class Workers:
    """`journeyflow worker` processes on a queue of this run's own."""

    def __init__(self, count: int, database_url: str, logs: Path) -> None:
        self.queue = f"jf-bench-{secrets.token_hex(4)}"
        script = shutil.which("journeyflow", path=str(Path(sys.executable).parent))
        if script is None:
            raise SystemExit("journeyflow is not installed in this environment (pip install -e .)")
        env = {**os.environ, "JOURNEYFLOW_ACTIONS__SMS__RATE_PER_SECOND": "100000",
               "JOURNEYFLOW_ACTIONS__PUSH__RATE_PER_SECOND": "100000"}
        self.processes = []
        for i in range(count):
            with (logs / f"{self.queue}-{i}.log").open("wb") as sink:
                self.processes.append(subprocess.Popen(
                    [script, "worker", "--redis", REDIS_URL, "--database", database_url, "--queue", self.queue,
                     "--partitions", str(PARTITIONS), "--concurrency", str(CONCURRENCY), "--batch", str(BATCH),
                     "--log-level", "WARNING"], stdout=sink, stderr=subprocess.STDOUT, env=env))
        wait_for(lambda: asyncio.run(health.read(REDIS_URL, self.queue)).workers == count, f"{count} workers up")

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.wait(timeout=120)
        redis = Redis.from_url(REDIS_URL)  # leave nothing of this run's queue behind
        try:
            for pattern in (f"{self.queue}:*", f"arq:*:{self.queue}:*"):
                keys = list(redis.scan_iter(match=pattern, count=1000))
                if keys:
                    redis.delete(*keys)
        finally:
            redis.close()


def fresh_schema(schema: str) -> tuple[Engine, str]:
    """A migrated schema of this run's own (not the engine benchmark's, which may run beside it)."""
    admin = connect(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    db = connect(url)
    migrate(db)
    return db, url


def drop_schema(schema: str) -> None:
    admin = connect(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def run_workers(count: int, messages: list[Message], lag_source: Callable[[float], list[Message]],
                extra_timers: int, progress: Progress, logs: Path) -> Figures:
    schema = f"jf_dist_{secrets.token_hex(3)}"
    db, url = fresh_schema(schema)
    runtime = publish_examples(db, len(messages))
    store_hidden(runtime, db, messages)
    workers = Workers(count, url, logs)
    # As `journeyflow serve --redis` does: each commit wakes its partitions' jobs (workers/push.py).
    pusher = Pusher(REDIS_URL, workers.queue)
    pusher.start()
    runtime.on_accepted = pusher.push
    try:
        began = reveal(db)
        pusher.push(range(PARTITIONS))  # every partition has events now, as if they had just arrived
        wait_for(lambda: unapplied(db) == 0, f"{count} worker(s) to apply the events")
        drain = time.perf_counter() - began

        rate = len(messages) / drain / 2
        lag_messages = lag_source(rate)
        feed(runtime, lag_messages, rate)
        wait_for(lambda: unapplied(db) == 0, f"{count} worker(s) to apply the fed events")
        lag = lags(db, "lag-")

        due, moment, started = make_due(db, runtime, extra_timers, progress)
        wait_for(lambda: due_timers(db, moment) == 0, f"{count} worker(s) to fire the timers")
        timer_time = time.perf_counter() - started
    finally:
        pusher.close()
        workers.stop()
        db.dispose()
        drop_schema(schema)
    return Figures(f"PostgreSQL, {count} worker(s)", len(messages), len(messages) / drain, len(lag), rate,
                   percentile(lag, 0.5), percentile(lag, 0.99), due, due / timer_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--timers", type=int, default=5_000, help="extra users waiting, made due at once")
    parser.add_argument("--lag-seconds", type=float, default=10.0, help="how long the steady feed lasts")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--smoke", action="store_true", help="a few hundred events (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.profiles, args.events, args.timers, args.lag_seconds, args.workers = 50, 400, 200, 1.0, [1, 2]

    console = Console(width=130)
    messages = generate(args.profiles, args.events)
    results = []
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as progress:
        def lag_source(rate: float) -> list[Message]:
            return renamed(generate(args.profiles, max(1, int(rate * args.lag_seconds)), seed=11), "lag-")

        floor = run_floor(PG_URL, messages, progress)
        results.append(run_embedded(f"sqlite:///{tmp}/embedded.db", messages, lag_source, args.timers, progress))
        for workers in args.workers:
            results.append(run_workers(workers, messages, lag_source, args.timers, progress, Path(tmp)))

    table = Table(title=f"Scale-out: {args.events:,} events over {args.profiles:,} profiles; lag at half each "
                        f"set-up's drain rate; {args.timers:,} timers due at once")
    for column in ("set-up", "events/s", "vs embedded", "÷ psycopg floor", "lag fed at /s", "lag p50 s",
                   "lag p99 s", "timers/s"):
        table.add_column(column, justify="left" if column == "set-up" else "right")
    base = results[0].events_per_s
    for figures in results:
        table.add_row(figures.label, f"{figures.events_per_s:,.0f}", f"{figures.events_per_s / base:.2f}x",
                      f"{figures.events_per_s / floor:.2f}", f"{figures.lag_rate:,.0f}", f"{figures.lag_p50_s:.2f}",
                      f"{figures.lag_p99_s:.2f}",
                      f"{figures.timers_per_s:,.0f}")
    console.print(table)
    console.print(f"psycopg floor (the same storage work on the raw driver, one process): {floor:,.0f} events/s")
    console.print(f"{PARTITIONS} partitions, {CONCURRENCY} jobs per worker, batches of {BATCH}; "
                  f"{os.cpu_count()} CPU cores on this machine")


if __name__ == "__main__":
    main()
