"""The report page with a million runs recorded: it must read the counters, not the runs.

    python benchmarks/report.py                  # 1,000,000 runs over 90 days, SQLite file
    python benchmarks/report.py --postgres       # the same on PostgreSQL too ($JOURNEYFLOW_TEST_PG_URL)
    python benchmarks/report.py --runs 200000 --rounds 50
    python benchmarks/report.py --smoke          # CI: 2,000 runs over 3 days, 3 rounds, so this cannot rot

Set up (not measured): a published journey (a welcome SMS, a 50/50 split with a control, a
two-day wait, a tag), the hourly `step_counters` the engine would have written for that many
runs entering over the period (written in bulk, summed per hour as the engine's upsert does),
and as many `journey_runs` rows, with a profile each, so that a report reading the runs would
show. Measured over real HTTP against a real uvicorn on loopback, signed in: the report page
(30 days per day, 90 days per day, 7 days per hour), the CSV and the canvas's live-counts
poll; median and p95 ms. Beside them, the scan a report without counters would need
(`SELECT step_id, count(*) FROM journey_runs WHERE version_id = ? GROUP BY step_id`), timed on
the same database, and how many times slower it is than the whole page.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from builder_ui.passwords import hash_password  # noqa: E402
from storage import connect, counters, keys, migrate, users  # noqa: E402
from storage import journeys as stored  # noqa: E402
from storage.counters import JOURNEY_LEVEL  # noqa: E402
from storage.tables import journey_runs, profiles, step_counters  # noqa: E402

PG_URL = os.environ.get("JOURNEYFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "jf_report_bench"
USER, PASSWORD = "bench", "benchmark password"
SLUG = "bench"
SOURCE = """journey "Report bench"
  trigger event "signup"
  goal "bought" on event "purchase" within 14d
  exit on event "unsubscribe"

  @welcome send sms "Welcome"
  @offer split "offer test":
    50% control:
      pass
    50%:
      @intro send push template "lens_intro"
  @rest wait 2d
  @thanks add tag "onboarded"
"""
WAIT = timedelta(days=2)  # @rest
CONVERSION = {"offer.control": 0.12, "offer.b": 0.14}  # per arm, while waiting at @rest
EXIT_SHARE = 0.04  # runs that unsubscribe while waiting
CHUNK = 50_000  # runs (and profiles) per INSERT batch
SECONDS_PER_HOUR = 3600
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --------------------------------------------------------------------------- setting up


def fresh(url: str) -> Engine:
    db = connect(url)
    if db.dialect.name == "postgresql":
        with db.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        db.dispose()
        db = connect(with_schema(url))
    migrate(db)
    return db


def with_schema(url: str) -> str:
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{SCHEMA}"


def serve(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    host, port = sock.getsockname()
    return server, thread, f"http://{host}:{port}"


def publish(url: str, admin_key: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as api:
        api.post("/v1/journeys", json={"source": SOURCE, "slug": SLUG}).raise_for_status()
        api.post(f"/v1/journeys/{SLUG}/publish").raise_for_status()


class Seeder:
    """Runs entering over `days` up to `now`, each through the journey as the engine moves
    it, written as `journey_runs` rows and as the counters the engine adds in the same
    transactions (hour by hour: entered, arms, the waiting and live gauges, conversions,
    exits, completions)."""

    def __init__(self, version_id: int, journey_id: int, now: datetime, days: int, seed: int = 7) -> None:
        self.version_id, self.journey_id, self.now = version_id, journey_id, now
        self.start = now - timedelta(days=days)
        self.span = days * 24 * SECONDS_PER_HOUR
        self.rng = random.Random(seed)
        self.counts: dict[tuple[str, str, int], int] = defaultdict(int)  # (step, metric, hour index) -> n

    def count(self, step: str, metric: str, at: float, n: int = 1) -> None:
        self.counts[(step, metric, int(at // SECONDS_PER_HOUR))] += n

    def run(self, profile_id: int) -> dict[str, Any]:
        rng = self.rng
        at = rng.random() * self.span  # seconds after the start
        entered = self.start + timedelta(seconds=at)
        arm = "offer.control" if rng.random() < 0.5 else "offer.b"
        for step, metric in ((JOURNEY_LEVEL, "entered"), (JOURNEY_LEVEL, "live"), ("welcome", "entered"),
                             ("offer", "entered"), ("offer", f"arm:{arm}"), ("rest", "entered"), ("rest", "waiting")):
            self.count(step, metric, at)
        if arm == "offer.b":
            self.count("intro", "entered", at)
        wait = WAIT.total_seconds()
        converted = at + rng.random() * wait if rng.random() < CONVERSION[arm] else None
        exited = at + rng.random() * wait if rng.random() < EXIT_SHARE else None
        if converted is not None and (exited is None or converted < exited) and converted < self.span:
            for step, metric in ((JOURNEY_LEVEL, "converted:bought"), ("rest", "converted"),
                                 ("offer", f"arm_converted:{arm}")):
                self.count(step, metric, converted)
        row: dict[str, Any] = {"profile_id": profile_id, "journey_id": self.journey_id, "version_id": self.version_id,
                               "entered_at": entered, "split_arms": {"offer": arm}}
        if exited is not None and exited < self.span:
            for step, metric, n in (("rest", "waiting", -1), (JOURNEY_LEVEL, "live", -1), ("rest", "exited", 1),
                                    (JOURNEY_LEVEL, "exited", 1)):
                self.count(step, metric, exited, n)
            return row | {"step_id": "rest", "state": "exited", "updated_at": self.start + timedelta(seconds=exited)}
        if at + wait < self.span:
            done = at + wait
            for step, metric, n in (("rest", "waiting", -1), ("thanks", "entered", 1), (JOURNEY_LEVEL, "live", -1),
                                    (JOURNEY_LEVEL, "completed", 1)):
                self.count(step, metric, done, n)
            return row | {"step_id": "thanks", "state": "completed", "updated_at": self.start + timedelta(seconds=done)}
        return row | {"step_id": "rest", "state": "waiting", "updated_at": entered, "waiting_since": entered,
                      "wake_at": entered + WAIT}

    def counter_rows(self) -> list[counters.CounterRow]:
        return [(self.version_id, step, metric, self.start + timedelta(hours=hour), n)
                for (step, metric, hour), n in self.counts.items()]


def seed(db: Engine, runs: int, days: int, now: datetime, progress: Progress) -> int:
    """Write the runs, their profiles and their counters; the version's id."""
    with db.connect() as conn:
        journey = stored.get(conn, SLUG)
        assert journey is not None and journey.live_version_id is not None
    seeder = Seeder(journey.live_version_id, journey.id, now, days)
    task = progress.add_task(f"{runs:,} runs and profiles", total=runs)
    for first in range(0, runs, CHUNK):
        ids = range(first + 1, min(runs, first + CHUNK) + 1)
        with db.begin() as conn:
            conn.execute(insert(profiles), [{"id": p, "traits": {}, "tags": [], "first_identity": f"user_id:b{p}",
                                             "created_at": seeder.start, "updated_at": now} for p in ids])
            conn.execute(insert(journey_runs), [seeder.run(p) for p in ids])
        progress.advance(task, len(ids))
    rows = seeder.counter_rows()
    with db.begin() as conn:
        counters.increment(conn, rows)
    with db.begin() as conn:
        if db.dialect.name == "postgresql":
            # profile ids were given explicitly: move the sequence past them
            conn.execute(text("SELECT setval(pg_get_serial_sequence('profiles', 'id'), "
                              "(SELECT max(id) FROM profiles))"))
        conn.execute(text("ANALYZE"))
    progress.remove_task(task)
    return journey.live_version_id


# --------------------------------------------------------------------------- measuring


def timed(call: Callable[[], int], rounds: int) -> tuple[list[float], int]:
    samples, size = [], 0
    call()  # warm: templates compiled, connections open
    for _ in range(rounds):
        began = time.perf_counter()
        size = call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples, size


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def sign_in(client: httpx.Client) -> None:
    found = CSRF.search(client.get("/builder/login").text)
    assert found is not None
    answer = client.post("/builder/login", data={"username": USER, "password": PASSWORD,
                                                  "csrf_token": found.group(1), "next": "/builder/"})
    assert answer.status_code == 303, answer.text


def fetch(client: httpx.Client, path: str) -> Callable[[], int]:
    def call() -> int:
        answer = client.get(path)
        answer.raise_for_status()
        return len(answer.content)

    return call


def scan(db: Engine, version_id: int) -> Callable[[], int]:
    query = (select(journey_runs.c.step_id, func.count()).where(journey_runs.c.version_id == version_id)
             .group_by(journey_runs.c.step_id))

    def call() -> int:
        with db.connect() as conn:
            return sum(n for _, n in conn.execute(query))

    return call


def measure(label: str, url: str, args: argparse.Namespace, console: Console) -> Table:
    db = fresh(url)
    now = datetime.now(UTC)
    with db.begin() as conn:
        users.create_user(conn, USER, hash_password(PASSWORD), True, now)
        admin = keys.create(conn, "admin", "report bench", now)[1]
    served_url = url if db.dialect.name == "sqlite" else with_schema(url)
    server, thread, base = serve(Settings(database_url=served_url))
    try:
        publish(base, admin)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            began = time.perf_counter()
            version_id = seed(db, args.runs, args.days, now, progress)
        with db.connect() as conn:
            counter_rows = conn.execute(select(func.count()).select_from(step_counters)).scalar_one()
            run_rows = conn.execute(select(func.count()).select_from(journey_runs)).scalar_one()
        console.print(f"{label}: {run_rows:,} runs and {counter_rows:,} counter rows written in "
                      f"{time.perf_counter() - began:,.0f} s")
        table = Table(title=f"{label}: report with {run_rows:,} runs over {args.days} days "
                            f"({counter_rows:,} counter rows), {args.rounds} rounds")
        for column in ("what", "median ms", "p95 ms", "response KiB"):
            table.add_column(column, justify="left" if column == "what" else "right")
        with httpx.Client(base_url=base, timeout=120) as client:
            sign_in(client)
            page = f"/builder/journeys/{SLUG}/report"
            measured = [("report page, 30 days per day", fetch(client, page)),
                        ("report page, 90 days per day", fetch(client, f"{page}?days=90")),
                        ("report page, 7 days per hour", fetch(client, f"{page}?days=7&granularity=hour")),
                        ("report CSV, 90 days per hour", fetch(client, f"{page}.csv?days=90&granularity=hour")),
                        ("canvas live counts (poll)", fetch(client, f"/builder/journeys/{SLUG}/counts"))]
            medians = {}
            for what, call in measured:
                samples, size = timed(call, args.rounds)
                medians[what] = statistics.median(samples)
                table.add_row(what, f"{medians[what]:,.1f}", f"{p95(samples):,.1f}", f"{size / 1024:,.1f}")
        samples, total = timed(scan(db, version_id), max(3, args.rounds // 5))
        assert total == run_rows
        page_ms = medians["report page, 30 days per day"]
        table.add_row("scan: journey_runs GROUP BY step_id", f"{statistics.median(samples):,.1f}",
                      f"{p95(samples):,.1f}", "–")
        table.add_row("scan / whole report page", f"{statistics.median(samples) / page_ms:,.1f}x", "", "")
        return table
    finally:
        server.should_exit = True
        thread.join()
        db.dispose()
        if url.startswith("postgresql"):  # a million rows are not left behind in a shared database
            admin_db = connect(url)
            with admin_db.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            admin_db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL too, at $JOURNEYFLOW_TEST_PG_URL")
    parser.add_argument("--smoke", action="store_true", help="a quick pass for CI")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.days, args.rounds, args.postgres = 2_000, 3, 3, False
    console = Console(width=110)
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("SQLite (WAL)", f"sqlite:///{tmp}/report.db")]
        if args.postgres:
            backends.append(("PostgreSQL", PG_URL))
        for label, url in backends:
            console.print(measure(label, url, args, console))


if __name__ == "__main__":
    main()
