"""End-to-end engine throughput: events in, runs moved, outbox rows committed.

    python benchmarks/engine.py            # 10,000 profiles, 100,000 events, 10,000 extra due timers, both backends
    python benchmarks/engine.py --profiles 100000 --events 1000000 --timers 1000000   # the issue's full size
    python benchmarks/engine.py --smoke    # CI: a few hundred events on SQLite, so this cannot rot
    python benchmarks/engine.py --rules both --no-postgres   # compiled and durable-rules matchers, same workload
    python benchmarks/engine.py --durable-memory 1000000     # matching only: durable-rules' RSS over 1M events
    python benchmarks/engine.py --profile --no-postgres      # and where the apply path's time goes (cProfile)
    python benchmarks/engine.py --lookups 20000 1000000      # the intake's identity lookup, old against new

All example journeys are live. Events are a realistic mix (identify, views, carts, purchases,
redemptions). Printed per backend: end-to-end rate (event in -> stored -> state changed ->
outbox committed), accept and apply rates apart, per-event apply latency p50/p99 (batch time /
batch size), timers fired per second (every waiting run of the workload plus `--timers` extra
users waiting, all due at once), and beside them, measured in the same run just before, the
raw-driver floor: the engine's storage work for the same messages written by hand on the stdlib
`sqlite3` driver or on psycopg (`run_floor`: per batch of 500, the accept reads and writes, 500
events, 250 run upserts, 250 outbox rows, the batch reads, the processed mark), with nothing
decided in between. Their ratio (engine ÷ floor) is the figure to read: issue 18 aims at 0.5.
Peak memory is the process's maximum RSS; with `--rules`, each backend runs in a fresh process
and its peak (and that of the durable-rules child) is printed per backend.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import random
import re
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Connection, Engine, event, func, insert, make_url, select, text, tuple_

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl.graph import CouponNode  # noqa: E402
from engine.clock import VirtualClock  # noqa: E402
from engine.durable.backend import RULES_BACKENDS, make_matcher  # noqa: E402
from engine.intake import owners_of  # noqa: E402
from engine.matcher import Matcher  # noqa: E402
from engine.messages import Message, parse_message  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.unit_of_work import chunks  # noqa: E402
from storage import connect, migrate  # noqa: E402
from storage.database import SQLITE_PRAGMAS  # noqa: E402
from storage.tables import (  # noqa: E402
    coupon_codes,
    coupon_pools,
    identities,
    journey_runs,
    journey_versions,
    profiles,
    timers,
)

START = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
PG_URL = os.environ.get("JOURNEYFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 500
LABELS = {"sqlite": "SQLite (WAL)", "postgresql": "PostgreSQL"}


def generate(profiles_count: int, events_count: int, seed: int = 7) -> list[Message]:
    """A reproducible mix: 10% identify, 40% views, 20% carts, 20% purchases, 10% other."""
    rng = random.Random(seed)
    out = []
    at = START
    for i in range(events_count):
        at += timedelta(seconds=rng.randint(0, 3))
        user = f"u{rng.randrange(profiles_count)}"
        roll = rng.random()
        if roll < 0.10:
            raw: dict[str, Any] = {"type": "identify", "userId": user, "traits": {
                "first_name": f"n{i % 97}", "total_spend": rng.randint(0, 5000), "push_token": "t",
                "tags": ["member"] if rng.random() < 0.5 else []}}
        else:
            name, props = rng.choice([
                ("product_viewed", {"category": rng.choice(["lens", "care_solution"]), "sku": "s"}),
                ("product_viewed", {"category": "lens", "sku": "s"}),
                ("add_to_cart", {"sku": "s", "amount": rng.randint(20, 300)}),
                ("add_to_cart", {"sku": "s", "amount": rng.randint(20, 300)}),
                ("purchase", {"category": rng.choice(["lens", "care_solution"]), "amount": rng.randint(20, 600)}),
                ("purchase", {"category": rng.choice(["lens", "care_solution"]), "amount": rng.randint(20, 600)}),
                ("signup", {"channel": rng.choice(["store", "wechat_mini", "app"])}),
                ("coupon_redeemed", {"pool": "CART_5OFF"}),
            ])
            raw = {"type": "track", "event": name, "userId": user, "properties": props}
        raw.update(messageId=f"m{i}", timestamp=at.isoformat())
        out.append(parse_message(raw, at))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fresh(url: str) -> Engine:
    db = connect(url)
    if db.dialect.name == "postgresql":
        with db.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS jf_bench CASCADE"))
            conn.execute(text("CREATE SCHEMA jf_bench"))
        db.dispose()
        db = connect(url + ("&" if "?" in url else "?") + "options=-csearch_path%3Djf_bench")
    migrate(db)
    return db


TIMER_JOURNEY = 'journey "Timer bench"\n  trigger api\n\n  @w wait 1d\n  @done send push "ping"\n'


def add_waiting_runs(db: Engine, version_id: int, count: int, progress: Progress) -> None:
    """`count` users waiting at the timer bench's wait, each with a due timer: set up by bare
    SQL (not measured), so that the timer phase starts with this many due at once."""
    task = progress.add_task(f"setting up {count:,} waiting runs", total=count)
    with db.connect() as conn:
        top_profile = conn.execute(select(func.coalesce(func.max(profiles.c.id), 0))).scalar_one()
        top_run = conn.execute(select(func.coalesce(func.max(journey_runs.c.id), 0))).scalar_one()
        journey_id = conn.execute(select(journey_versions.c.journey_id)
                                  .where(journey_versions.c.id == version_id)).scalar_one()
    due = START + timedelta(days=1)
    step = 20_000
    for start in range(0, count, step):
        n = min(step, count - start)
        with db.begin() as conn:
            pids = range(top_profile + start + 1, top_profile + start + n + 1)
            rids = range(top_run + start + 1, top_run + start + n + 1)
            conn.execute(insert(profiles), [{"id": p, "traits": {}, "tags": [], "first_identity": f"user_id:t{p}",
                                             "created_at": START, "updated_at": START} for p in pids])
            conn.execute(insert(journey_runs), [{
                "id": r, "profile_id": p, "journey_id": journey_id, "version_id": version_id, "step_id": "w",
                "state": "waiting", "entered_at": START, "updated_at": START, "wake_at": due, "waiting_since": START}
                for p, r in zip(pids, rids, strict=True)])
            conn.execute(insert(timers), [{"run_id": r, "due_at": due, "kind": "step", "step_id": "w"} for r in rids])
        progress.advance(task, n)
    if db.dialect.name == "postgresql":  # ids were given explicitly: move the sequences past them
        with db.begin() as conn:
            for table in ("profiles", "journey_runs"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    progress.remove_task(task)


def stock_coupon_pools(db: Engine, runtime: Runtime, codes: int) -> None:
    """Every pool the live journeys issue from, with enough codes that none runs dry (set up,
    not measured): a dry pool would skip the claim and its outbox row."""
    pools = sorted({node.pool for program in runtime.programs.values() for node in program.journey.nodes.values()
                    if isinstance(node, CouponNode)})
    with db.begin() as conn:
        for pool in pools:
            pool_id = conn.execute(insert(coupon_pools).values(name=pool, created_at=START)
                                   .returning(coupon_pools.c.id)).scalar_one()
            for start in range(0, codes, 20_000):
                conn.execute(insert(coupon_codes), [{"pool_id": pool_id, "code": f"{pool}-{i:08d}"}
                                                    for i in range(start, min(codes, start + 20_000))])


def run_engine(url: str, messages: list[Message], extra_timers: int, progress: Progress,
               matcher: Matcher | None = None, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    """The engine end to end; with `profiler`, that profiler runs over the apply path only
    (`process_events`), so its figures say where applying time goes."""
    db = fresh(url)
    clock = VirtualClock(START)
    runtime = Runtime(db, clock, matcher=matcher)
    for path in sorted((ROOT / "examples/journeys").glob("*.journey")):
        runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
    stock_coupon_pools(db, runtime, codes=len(messages) // 10)
    task = progress.add_task(f"engine on {db.dialect.name}", total=len(messages))
    accept_time = apply_time = 0.0
    latencies: list[float] = []
    for start in range(0, len(messages), BATCH):
        chunk = messages[start:start + BATCH]
        clock.move_to(chunk[-1].timestamp)
        began = time.perf_counter()
        runtime.accept(chunk)
        accepted = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        runtime.process_events(BATCH)
        if profiler is not None:
            profiler.disable()
        done = time.perf_counter()
        accept_time += accepted - began
        apply_time += done - accepted
        latencies.append((done - accepted) / len(chunk))
        progress.advance(task, len(chunk))
    with db.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM journey_runs")).scalar_one()
    # Every waiting run's timer, fired at once: the clock jumps past them all.
    if extra_timers:
        add_waiting_runs(db, runtime.publish(TIMER_JOURNEY, slug="timer-bench"), extra_timers, progress)
    clock.move_to(clock.now() + timedelta(days=400))
    with db.connect() as conn:
        due = conn.execute(text("SELECT count(*) FROM timers")).scalar_one()
    task = progress.add_task(f"timers on {db.dialect.name}", total=due)
    began = time.perf_counter()
    fired = 0
    while fired < due and (n := runtime.fire_due_timers(BATCH)):
        fired += n
        progress.advance(task, n)
    timer_time = time.perf_counter() - began
    with db.connect() as conn:
        outbox_rows = conn.execute(text("SELECT count(*) FROM outbox WHERE journey_id IN "
                                        "(SELECT id FROM journeys WHERE slug != 'timer-bench')")).scalar_one()
    db.dispose()
    return {"events": len(messages), "end_to_end_per_s": len(messages) / (accept_time + apply_time),
            "accept_per_s": len(messages) / accept_time,
            "apply_per_s": len(messages) / apply_time, "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000, "timers": fired,
            "timers_per_s": fired / timer_time if timer_time else 0.0, "outbox": outbox_rows, "runs": runs}


# The raw-driver floor: what the issue calls the physical floor of the engine's work.
FLOOR_RUNS_PER_EVENT = 0.5  # run upserts per event (250 per batch of 500), as issue 18 defines the floor
FLOOR_OUTBOX_PER_EVENT = 0.5  # outbox rows per event (250 per batch of 500)
FLOOR_JOURNEY = 1


def _sqlite_stamp(moment: datetime) -> str:
    """An instant as SQLAlchemy stores `UTCDateTime` on SQLite: the UTC wall clock, fixed width."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _FloorDriver:
    """The little a raw-driver floor needs of its backend: placeholders, ids, time stamps,
    a transaction. Statements are written once, by hand, as a careful hand would."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        if self.postgres:
            import psycopg

            conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            self.conn: Any = psycopg.connect(conninfo, options="-csearch_path=jf_bench")
            self.stamp: Any = lambda moment: moment
        else:
            self.conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                self.conn.execute(f"PRAGMA {pragma}")
            self.stamp = _sqlite_stamp
        self.top: dict[str, int] = {}

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.postgres else statement

    def begin(self) -> None:
        if not self.postgres:
            self.conn.execute("BEGIN IMMEDIATE")  # as the engine's writer transactions do

    def commit(self) -> None:
        if self.postgres:
            self.conn.commit()
        else:
            self.conn.execute("COMMIT")

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        cursor = self.conn.execute(self.sql(statement), params)
        return list(cursor.fetchall())

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(self.sql(statement), params)

    def many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.cursor().executemany(self.sql(statement), rows)

    def copy(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Bulk rows for set-up: COPY on PostgreSQL, executemany on SQLite."""
        if self.postgres:
            with self.conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.many(f"INSERT INTO {table} ({columns}) VALUES ({_marks(columns.count(',') + 1)})", rows)

    def ids(self, table: str, n: int) -> list[int]:
        """`n` fresh ids of `table`: its sequence on PostgreSQL, max(id) and up on SQLite (the
        write lock is held), as `storage.ids` hands them out."""
        if not n:
            return []
        if self.postgres:
            return [r[0] for r in self.fetch(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                                             "FROM generate_series(1, ?)", (n,))]
        if table not in self.top:
            self.top[table] = self.fetch(f"SELECT coalesce(max(id), 0) FROM {table}")[0][0]
        first = self.top[table] + 1
        self.top[table] += n
        return list(range(first, first + n))

    def close(self) -> None:
        self.conn.close()


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def run_floor(url: str, messages: list[Message], progress: Progress) -> float:
    """The engine's storage work per batch on the raw driver (stdlib sqlite3, or psycopg with
    executemany in pipeline mode), statements written once by hand, nothing decided between
    them; events/s end to end. Per batch of 500 messages, two transactions like the engine's:
    accept (the message ids already stored, the identities' owners, new profiles and their
    identities, 500 events) and apply (the batch's unprocessed events, its profiles and live runs
    read and decoded, 250 run upserts, 250 outbox rows, the events marked processed). Same schema
    and indexes (our migrations), same pragmas on SQLite."""
    fresh(url).dispose()
    driver = _FloorDriver(url)
    task = progress.add_task(f"raw-driver floor on {'postgresql' if driver.postgres else 'sqlite'}",
                             total=len(messages))
    stamp = driver.stamp
    driver.begin()
    driver.many("INSERT INTO journeys (id, slug, name, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(FLOOR_JOURNEY, "floor", "floor", "live", stamp(START), stamp(START))])
    driver.many("INSERT INTO journey_versions (id, journey_id, version, source, graph, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(FLOOR_JOURNEY, FLOOR_JOURNEY, 1, "", "{}", stamp(START))])
    driver.commit()
    run_of: dict[int, int] = {}  # profile -> its run, upserted from then on
    runs_every, outbox_every = round(1 / FLOOR_RUNS_PER_EVENT), round(1 / FLOOR_OUTBOX_PER_EVENT)
    began = time.perf_counter()
    for start in range(0, len(messages), BATCH):
        chunk = messages[start:start + BATCH]
        now = stamp(chunk[-1].timestamp)
        driver.begin()  # accept
        ids = [m.message_id for m in chunk]
        known = {r[0] for r in driver.fetch(f"SELECT message_id FROM events WHERE message_id IN ({_marks(len(ids))})",
                                            ids)}
        users = sorted({m.user_id or "" for m in chunk})
        owner = dict(driver.fetch("SELECT value, profile_id FROM identities WHERE kind = ? AND value IN "
                                  f"({_marks(len(users))})", ["user_id", *users]))
        new_users = [u for u in users if u not in owner]
        owner.update(zip(new_users, driver.ids("profiles", len(new_users)), strict=True))
        driver.many("INSERT INTO profiles (id, traits, tags, first_identity, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [(owner[u], "{}", "[]", f"user_id:{u}", now, now) for u in new_users])
        driver.many("INSERT INTO identities (kind, value, profile_id) VALUES (?, ?, ?)",
                    [("user_id", u, owner[u]) for u in new_users])
        driver.many("INSERT INTO events (message_id, profile_id, type, name, properties, occurred_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                    [(m.message_id, owner[m.user_id or ""], m.type, m.event,
                      json.dumps(dict(m.properties if m.type == "track" else m.traits)), stamp(m.timestamp), now)
                     for m in chunk if m.message_id not in known])
        driver.commit()
        driver.begin()  # apply
        rows = driver.fetch("SELECT id, profile_id, type, name, properties, occurred_at FROM events "
                            "WHERE processed_at IS NULL ORDER BY id LIMIT ?", (BATCH,))
        props = [json.loads(r[4]) if isinstance(r[4], str) else r[4] for r in rows]
        pids = sorted({r[1] for r in rows})
        users_read = driver.fetch("SELECT id, traits, tags, timezone, merged_into, first_identity FROM profiles "
                                  f"WHERE id IN ({_marks(len(pids))})", pids)
        traits = [json.loads(r[1]) if isinstance(r[1], str) else r[1] for r in users_read]
        driver.fetch("SELECT id, journey_id, version_id, step_id, state, entered_at, wake_at, waiting_since, "
                     f"trigger_event_id, results, split_arms, row_version FROM journey_runs WHERE profile_id IN "
                     f"({_marks(len(pids))}) AND state IN ('active', 'waiting')", pids)
        movers = [r for i, r in enumerate(rows) if (start + i) % runs_every == 0]
        fresh_runs = sorted({r[1] for r in movers if r[1] not in run_of})
        run_of.update(zip(fresh_runs, driver.ids("journey_runs", len(fresh_runs)), strict=True))
        driver.many("INSERT INTO journey_runs (id, profile_id, journey_id, version_id, step_id, state, entered_at, "
                    "updated_at, results, split_arms, row_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (id) DO UPDATE SET step_id = excluded.step_id, state = excluded.state, "
                    "updated_at = excluded.updated_at, results = excluded.results, "
                    "row_version = journey_runs.row_version + 1",
                    [(run_of[r[1]], r[1], FLOOR_JOURNEY, FLOOR_JOURNEY, f"s{r[0] % 7}", "waiting", now, now, "{}", "{}")
                     for r in movers])
        senders = [r for i, r in enumerate(rows) if (start + i) % outbox_every == 1 % outbox_every]
        driver.many("INSERT INTO outbox (idempotency_key, run_id, profile_id, journey_id, step_id, channel, payload, "
                    "send_at, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (idempotency_key) DO NOTHING",
                    [(f"floor/{r[0]}", run_of.get(r[1]), r[1], FLOOR_JOURNEY, "s", "sms", '{"text": "hi"}', now,
                      "pending", now, now) for r in senders])
        done = [r[0] for r in rows]
        driver.execute(f"UPDATE events SET processed_at = ? WHERE id IN ({_marks(len(done))})", [now, *done])
        driver.commit()
        del props, traits  # decoded, as the engine must decode them; the floor decides nothing with them
        progress.advance(task, len(chunk))
    elapsed = time.perf_counter() - began
    driver.close()
    return len(messages) / elapsed


def print_profile(profiler: cProfile.Profile, label: str, console: Console) -> None:
    """The top 25 functions by self time over the apply path (`--profile`)."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    console.print(f"cProfile of the apply path (process_events) on {label}, top 25 by self time:", markup=False)
    print(out.getvalue().strip())


LOOKUP_SIZE = 400  # identities looked up per statement batch, as a group commit of 200 people with two each
LOOKUP_ROUNDS = 40


def fill_identities(url: str, count: int) -> Engine:
    """A fresh database with `count` identities over count // 2 profiles (a user id and an
    anonymous id each), written by the raw driver: set up, not measured. PostgreSQL is then
    analysed, as autovacuum would have by the time a table is this big."""
    db = fresh(url)
    driver = _FloorDriver(url)
    at = driver.stamp(START)
    people = count // 2
    for first in range(1, people + 1, 50_000):
        ids = range(first, min(people, first + 49_999) + 1)
        driver.begin()
        driver.copy("profiles", "id, traits, tags, first_identity, created_at, updated_at",
                    [(i, "{}", "[]", f"user_id:u{i}", at, at) for i in ids])
        driver.copy("identities", "kind, value, profile_id",
                    [row for i in ids for row in (("user_id", f"u{i}", i), ("anonymous_id", f"a{i}", i))])
        driver.commit()
    if driver.postgres:
        driver.conn.autocommit = True
        driver.execute("ANALYZE profiles")
        driver.execute("ANALYZE identities")
    driver.close()
    return db


def owners_by_row_value(conn: Connection, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The identity lookup `engine/intake.py` made before issue 18, kept to measure against:
    `(kind, value) IN (...)`, which SQLite renders `IN (VALUES ...)` and runs as a scan."""
    found: dict[tuple[str, str], int] = {}
    for part in chunks(wanted):
        for row in conn.execute(select(identities.c.kind, identities.c.value, identities.c.profile_id)
                                .where(tuple_(identities.c.kind, identities.c.value).in_(part))):
            found[(row.kind, row.value)] = row.profile_id
    return found


def _plan_of(conn: Connection, lookup: Any, wanted: Sequence[tuple[str, str]]) -> str:
    """The access lines of the plan of the first statement `lookup` runs."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", record)
    try:
        lookup(conn, wanted)
    finally:
        event.remove(conn, "before_cursor_execute", record)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    statement, parameters = statements[0]
    if conn.dialect.name == "sqlite":
        cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
        lines = [str(r[3]) for r in cursor.fetchall()]
    else:
        cursor.execute(f"EXPLAIN {statement}", parameters)
        lines = [re.sub(r"^->\s*|\s+\(cost=.*\)$", "", str(r[0]).strip()) for r in cursor.fetchall()
                 if "Scan" in str(r[0])]
    cursor.close()
    counted = Counter(lines)  # PostgreSQL's row-value IN is one index scan per pair: say how many
    return "; ".join(line if n == 1 else f"{n} x {line}" for line, n in counted.items())


def lookups(sizes: Sequence[int], backends: Sequence[tuple[str, str]], console: Console) -> None:
    """Before/after of the intake's identity lookup: ms per 400 lookups (200 people, a user id
    and an anonymous id each, one in ten unknown), the old row-value statement and the new
    per-kind one alternating on one connection, LOOKUP_ROUNDS rounds, medians."""
    table = Table(title=f"Identity owners: ms per {LOOKUP_SIZE} lookups, median of {LOOKUP_ROUNDS} rounds "
                        "(engine/intake.py before and after)")
    for column in ("backend", "identities", "(kind, value) IN ms", "kind = ? AND value IN ms", "old / new"):
        table.add_column(column, justify="left" if column == "backend" else "right", no_wrap=column == "backend")
    plans: dict[str, list[str]] = {}
    for label, url in backends:
        for size in sizes:
            db = fill_identities(url.replace(".db", f"-{size}.db") if url.startswith("sqlite") else url, size)
            rng = random.Random(5)
            people = size // 2
            times: dict[str, list[float]] = {"old": [], "new": []}
            with db.connect() as conn:
                for round_ in range(LOOKUP_ROUNDS):
                    chosen = [rng.randint(1, people) if rng.random() < 0.9 else people + rng.randint(1, people)
                              for _ in range(LOOKUP_SIZE // 2)]
                    wanted = sorted({(k, f"{p}{i}") for i in chosen for k, p in (("user_id", "u"),
                                                                                ("anonymous_id", "a"))})
                    answers = {}
                    for name in ("old", "new") if round_ % 2 else ("new", "old"):
                        began = time.perf_counter()
                        answers[name] = (owners_by_row_value if name == "old" else owners_of)(conn, wanted)
                        times[name].append((time.perf_counter() - began) * 1000)
                    assert answers["old"] == answers["new"], "the two lookups disagree"
                plans[f"{label}, {size:,} identities"] = [_plan_of(conn, owners_by_row_value, wanted),
                                                          _plan_of(conn, owners_of, wanted)]
                conn.rollback()
            db.dispose()
            old, new = statistics.median(times["old"]), statistics.median(times["new"])
            table.add_row(label, f"{size:,}", f"{old:.2f}", f"{new:.2f}", f"{old / new:.1f}x")
    console.print(table)
    for where, (old_plan, new_plan) in plans.items():
        console.print(f"plans, {where}:\n  old: {old_plan}\n  new: {new_plan}", markup=False, soft_wrap=True)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process now, from /proc (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_backend(rules: str, url: str, profiles: int, events_count: int, extra_timers: int) -> dict[str, float]:
    """One backend's engine run in a fresh process (spawned), so its peak memory is its own:
    this process's max RSS, and its children's (the durable-rules child) apart."""
    messages = generate(profiles, events_count)
    matcher = make_matcher(rules)
    try:
        with Progress(disable=True) as progress:
            figures = run_engine(url, messages, extra_timers, progress, matcher)
    finally:
        close = getattr(matcher, "close", None)
        if close is not None:
            close()
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["child_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return figures


def compare_rules(args: argparse.Namespace, backends: list[str], console: Console) -> None:
    """The same workload on SQLite through each rules backend: rates and peak memory."""
    spawn = multiprocessing.get_context("spawn")
    table = Table(title=f"Rules backends: {args.events:,} events over {args.profiles:,} profiles on SQLite, "
                        f"all example journeys live")
    for column in ("rules", "end to end ev/s", "apply ev/s", "apply p50 ms", "apply p99 ms", "runs", "outbox rows",
                   "timers/s", "peak MB (engine)", "peak MB (child)"):
        table.add_column(column, justify="left" if column == "rules" else "right")
    for rules in backends:
        with tempfile.TemporaryDirectory() as tmp, spawn.Pool(1) as pool:
            f = pool.apply(run_backend, (rules, f"sqlite:///{tmp}/engine.db", args.profiles, args.events, args.timers))
        table.add_row(rules, f"{f['end_to_end_per_s']:,.0f}", f"{f['apply_per_s']:,.0f}", f"{f['p50_ms']:.3f}",
                      f"{f['p99_ms']:.3f}", f"{f['runs']:,}", f"{f['outbox']:,}", f"{f['timers_per_s']:,.0f}",
                      f"{f['peak_mb']:,.0f}", f"{f['child_peak_mb']:,.0f}" if rules == "durable" else "-")
    console.print(table)


def durable_memory(count: int, profiles: int, console: Console) -> None:
    """Matching only, through `DurableMatcher`: `count` events (and profile changes) against
    every example journey, printing the RSS of this process and of the durable-rules child ten
    times along the way. Stateless use means both must stay flat."""
    from dsl import compile_source
    from engine.durable import DurableMatcher
    from engine.scope import Scope

    journeys = {path.stem: compile_source(path.read_text(encoding="utf-8"))
                for path in sorted((ROOT / "examples/journeys").glob("*.journey"))}
    sample = generate(profiles, min(count, 100_000))
    users: dict[str, dict[str, Any]] = {}
    with DurableMatcher() as matcher:
        matcher.load(journeys)
        every = max(1, count // 10)
        began = time.perf_counter()
        decided = 0
        for i in range(count):
            message = sample[i % len(sample)]
            user = users.setdefault(message.user_id or "", {"tags": []})
            if message.type == "identify":
                user.update(message.traits)
                decided += bool(matcher.on_profile_change(Scope(user, message.timestamp)).enter)
            else:
                decided += bool(matcher.on_event(message.event or "", Scope(user, message.timestamp,
                                                                            message.properties)).enter)
            if (i + 1) % every == 0:
                elapsed = time.perf_counter() - began
                console.print(f"{i + 1:>10,} inputs  {(i + 1) / elapsed:>8,.0f}/s  RSS engine "
                              f"{_rss_mb(os.getpid()):>6.1f} MB  child {_rss_mb(matcher.child.pid):>6.1f} MB  "
                              f"(restarts {matcher.child.restarts}, fallbacks {matcher.fallbacks}, "
                              f"entries {decided:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--timers", type=int, default=10_000,
                        help="extra users waiting with a due timer when the timer phase starts")
    parser.add_argument("--smoke", action="store_true", help="a few hundred events on SQLite (CI)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (to run the two side by side)")
    parser.add_argument("--rules", choices=[*RULES_BACKENDS, "both"],
                        help="run the engine on SQLite with this rules backend (or each) in a fresh process, "
                             "and print rates and peak memory per backend")
    parser.add_argument("--durable-memory", type=int, metavar="EVENTS",
                        help="matching only through durable-rules for this many inputs, printing RSS samples")
    parser.add_argument("--profile", action="store_true",
                        help="run the engine once more per backend with cProfile over the apply path, and print "
                             "the top 25 functions by self time (the rates printed before are unprofiled)")
    parser.add_argument("--lookups", type=int, nargs="+", metavar="IDENTITIES",
                        help="only measure the intake's identity lookup, old statement against new, at each of these "
                             "table sizes (e.g. --lookups 20000 1000000)")
    args = parser.parse_args()
    if args.smoke:
        args.profiles, args.events, args.timers, args.no_postgres = 100, 600, 500, True

    console = Console(width=130)
    backends = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["postgresql"])
    if args.lookups:
        with tempfile.TemporaryDirectory() as tmp:
            lookups(args.lookups, [(LABELS[b], f"sqlite:///{tmp}/lookups.db" if b == "sqlite" else PG_URL)
                                   for b in backends], console)
        return
    if args.durable_memory:
        durable_memory(args.durable_memory, args.profiles, console)
        return
    if args.rules or args.smoke:  # the smoke run compares both backends too, so neither mode rots
        compare_rules(args, list(RULES_BACKENDS) if args.rules in ("both", None) else [args.rules], console)
        if not args.smoke:
            return
        durable_memory(1_000, args.profiles, console)
    messages = generate(args.profiles, args.events)
    results = []
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as progress:
        for backend in backends:
            url = f"sqlite:///{tmp}/engine.db" if backend == "sqlite" else PG_URL
            floor_url = f"sqlite:///{tmp}/floor.db" if backend == "sqlite" else PG_URL
            # The floor first, then the engine, in the same minute: the ratio is what to read.
            floor = run_floor(floor_url, messages, progress)
            results.append((LABELS[backend], run_engine(url, messages, args.timers, progress), floor))
        profiles = []
        if args.profile or args.smoke:
            for backend in backends:
                profiler = cProfile.Profile()
                url = f"sqlite:///{tmp}/profiled.db" if backend == "sqlite" else PG_URL
                run_engine(url, messages, 0, progress, profiler=profiler)
                profiles.append((LABELS[backend], profiler))

    live = len(list((ROOT / "examples/journeys").glob("*.journey")))
    table = Table(title=f"Engine: {args.events:,} events over {args.profiles:,} profiles, "
                        f"{live} live journeys, batches of {BATCH}, beside the raw-driver floor")
    for column in ("backend", "end to end ev/s", "accept ev/s", "apply ev/s", "apply p50 ms", "apply p99 ms", "runs",
                   "outbox rows", "timers", "timers/s", "raw floor ev/s", "engine ÷ floor"):
        table.add_column(column, justify="left" if column == "backend" else "right", no_wrap=column == "backend")
    for label, figures, floor in results:
        table.add_row(label, f"{figures['end_to_end_per_s']:,.0f}",
                      f"{figures['accept_per_s']:,.0f}", f"{figures['apply_per_s']:,.0f}",
                      f"{figures['p50_ms']:.3f}", f"{figures['p99_ms']:.3f}", f"{figures['runs']:,}",
                      f"{figures['outbox']:,}", f"{figures['timers']:,}", f"{figures['timers_per_s']:,.0f}",
                      f"{floor:,.0f}", f"{figures['end_to_end_per_s'] / floor:.2f}")
    console.print(table)
    console.print(f"raw floor: per batch of {BATCH}, {FLOOR_RUNS_PER_EVENT * BATCH:.0f} run upserts and "
                  f"{FLOOR_OUTBOX_PER_EVENT * BATCH:.0f} outbox rows (issue 18's definition); the engine wrote "
                  + "; ".join(f"{label} {f['runs'] / f['events']:.2f} runs and {f['outbox'] / f['events']:.2f} "
                              "outbox rows per event" for label, f, _ in results), markup=False)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory (max RSS of this process): {peak_mb:,.0f} MB; "
                  f"median apply latency across backends: "
                  f"{statistics.median(r[1]['p50_ms'] for r in results):.3f} ms/event")
    for label, profiler in profiles:
        print_profile(profiler, label, console)
    if args.smoke:  # the lookup measurement too, small, so that it cannot rot
        with tempfile.TemporaryDirectory() as tmp:
            lookups([2_000], [(LABELS["sqlite"], f"sqlite:///{tmp}/lookups.db")], console)


if __name__ == "__main__":
    main()
