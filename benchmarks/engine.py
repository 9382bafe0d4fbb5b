"""End-to-end engine throughput: events in, runs moved, outbox rows committed.

    python benchmarks/engine.py            # 10,000 profiles, 100,000 events, 10,000 extra due timers, both backends
    python benchmarks/engine.py --profiles 100000 --events 1000000 --timers 1000000   # the issue's full size
    python benchmarks/engine.py --smoke    # CI: a few hundred events on SQLite, so this cannot rot
    python benchmarks/engine.py --rules both --no-postgres   # compiled and durable-rules matchers, same workload
    python benchmarks/engine.py --durable-memory 1000000     # matching only: durable-rules' RSS over 1M events

All example journeys are live. Events are a realistic mix (identify, views, carts, purchases,
redemptions). Printed per backend: end-to-end rate (event in -> stored -> state changed ->
outbox committed), accept and apply rates apart, per-event apply latency p50/p99 (batch time /
batch size), timers fired per second (every waiting run of the workload plus `--timers` extra
users waiting, all due at once), and the storage floor: the same batched reads and writes done
by bare SQLAlchemy in the same run, so the engine's overhead shows as a ratio. Peak memory is
the process's maximum RSS; with `--rules`, each backend runs in a fresh process and its peak
(and that of the durable-rules child) is printed per backend.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, bindparam, func, insert, select, text, tuple_, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl.graph import CouponNode  # noqa: E402
from engine.clock import VirtualClock  # noqa: E402
from engine.durable.backend import RULES_BACKENDS, make_matcher  # noqa: E402
from engine.matcher import Matcher  # noqa: E402
from engine.messages import Message, parse_message  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from storage import connect, migrate  # noqa: E402
from storage.tables import (  # noqa: E402
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

START = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
PG_URL = os.environ.get("JOURNEYFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 500


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
               matcher: Matcher | None = None) -> dict[str, float]:
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
        runtime.process_events(BATCH)
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


def run_floor(url: str, messages: list[Message], runs_share: float, progress: Progress) -> float:
    """The storage floor: the reads and writes the engine makes per batch, done by bare SQL
    with nothing decided in between. Per batch, like the engine: look up message ids and
    identities, create the new profiles, store the events; then read the batch back with its
    profiles, live runs and newest entries, write runs and outbox rows for the same share of
    events, write back changed profiles, mark the events processed. Returns events/s end to end."""
    db = fresh(url)
    task = progress.add_task(f"storage floor on {db.dialect.name}", total=len(messages))
    with db.begin() as conn:
        conn.execute(insert(journeys).values(id=1, slug="floor", name="floor", status="live", created_at=START,
                                             updated_at=START))
        conn.execute(insert(journey_versions).values(id=1, journey_id=1, version=1, source="", graph={},
                                                     created_at=START))
    every = round(1 / runs_share) if runs_share else 0  # one run (and outbox row) per this many events
    ids: dict[str, int] = {}
    began = time.perf_counter()
    for start in range(0, len(messages), BATCH):
        chunk = messages[start:start + BATCH]
        with db.begin() as conn:  # accept
            conn.execute(select(events.c.message_id).where(events.c.message_id.in_([m.message_id for m in chunk])))
            users = sorted({m.user_id or "" for m in chunk})
            conn.execute(select(identities.c.profile_id).where(
                tuple_(identities.c.kind, identities.c.value).in_([("user_id", u) for u in users]))).all()
            for user in users:
                if user not in ids:
                    ids[user] = conn.execute(insert(profiles).values(traits={}, tags=[], created_at=START,
                                                                     updated_at=START).returning(profiles.c.id)
                                             ).scalar_one()
                    conn.execute(insert(identities).values(kind="user_id", value=user, profile_id=ids[user]))
            conn.execute(insert(events), [{
                "message_id": m.message_id, "profile_id": ids[m.user_id or ""], "type": m.type, "name": m.event,
                "properties": dict(m.properties), "occurred_at": m.timestamp, "received_at": START} for m in chunk])
        with db.begin() as conn:  # apply
            rows = conn.execute(select(events).where(events.c.processed_at.is_(None)).order_by(events.c.id)
                                .limit(BATCH)).all()
            pids = sorted({r.profile_id for r in rows})
            conn.execute(select(profiles).where(profiles.c.id.in_(pids))).all()
            conn.execute(select(journey_runs).where(journey_runs.c.profile_id.in_(pids))).all()
            conn.execute(select(journey_runs.c.profile_id, func.max(journey_runs.c.entered_at))
                         .where(journey_runs.c.profile_id.in_(pids)).group_by(journey_runs.c.profile_id)).all()
            starting = [r for i, r in enumerate(rows) if every and (start + i) % every == 0]
            if starting:
                run_ids = conn.execute(insert(journey_runs).returning(journey_runs.c.id, sort_by_parameter_order=True),
                                       [{"profile_id": r.profile_id, "journey_id": 1, "version_id": 1,
                                         "state": "completed", "entered_at": START, "updated_at": START}
                                        for r in starting]).scalars().all()
                conn.execute(insert(outbox), [{
                    "idempotency_key": f"{run}/s", "run_id": run, "profile_id": r.profile_id, "channel": "sms",
                    "payload": {}, "send_at": START, "status": "pending", "created_at": START, "updated_at": START}
                    for run, r in zip(run_ids, starting, strict=True)])
            changed = sorted({r.profile_id for r in rows if r.type == "identify"})
            if changed:
                conn.execute(update(profiles).where(profiles.c.id == bindparam("b_id")).values(
                    traits=bindparam("b_traits"), updated_at=START), [{"b_id": p, "b_traits": {}} for p in changed])
            conn.execute(update(events).where(events.c.id.in_([r.id for r in rows])).values(processed_at=START))
        progress.advance(task, len(chunk))
    elapsed = time.perf_counter() - began
    db.dispose()
    return len(messages) / elapsed


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
    args = parser.parse_args()
    if args.smoke:
        args.profiles, args.events, args.timers, args.no_postgres = 100, 600, 500, True

    console = Console(width=130)
    if args.durable_memory:
        durable_memory(args.durable_memory, args.profiles, console)
        return
    if args.rules or args.smoke:  # the smoke run compares both backends too, so neither mode rots
        compare_rules(args, list(RULES_BACKENDS) if args.rules in ("both", None) else [args.rules], console)
        if not args.smoke:
            return
        durable_memory(1_000, args.profiles, console)
    messages = generate(args.profiles, args.events)
    with tempfile.TemporaryDirectory() as tmp:
        urls = [] if args.no_sqlite else [("SQLite (WAL)", f"sqlite:///{tmp}/engine.db", f"sqlite:///{tmp}/floor.db")]
        if not args.no_postgres:
            urls.append(("PostgreSQL", PG_URL, PG_URL))
        results = []
        with Progress(console=console, transient=True) as progress:
            for label, url, floor_url in urls:
                engine_figures = run_engine(url, messages, args.timers, progress)
                runs_share = engine_figures["runs"] / engine_figures["events"]
                floor = run_floor(floor_url, messages, runs_share, progress)
                results.append((label, engine_figures, floor))

    live = len(list((ROOT / "examples/journeys").glob("*.journey")))
    table = Table(title=f"Engine: {args.events:,} events over {args.profiles:,} profiles, "
                        f"{live} live journeys, batches of {BATCH}")
    for column in ("backend", "end to end ev/s", "accept ev/s", "apply ev/s", "apply p50 ms", "apply p99 ms", "runs",
                   "outbox rows", "timers", "timers/s", "floor ev/s", "engine / floor"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for label, figures, floor in results:
        table.add_row(label, f"{figures['end_to_end_per_s']:,.0f}",
                      f"{figures['accept_per_s']:,.0f}", f"{figures['apply_per_s']:,.0f}",
                      f"{figures['p50_ms']:.3f}", f"{figures['p99_ms']:.3f}", f"{figures['runs']:,}",
                      f"{figures['outbox']:,}", f"{figures['timers']:,}", f"{figures['timers_per_s']:,.0f}",
                      f"{floor:,.0f}", f"{floor / figures['end_to_end_per_s']:.1f}x slower")
    console.print(table)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"peak memory (max RSS of this process): {peak_mb:,.0f} MB; "
                  f"median apply latency across backends: "
                  f"{statistics.median(r[1]['p50_ms'] for r in results):.3f} ms/event")


if __name__ == "__main__":
    main()
