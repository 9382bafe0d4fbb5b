"""Event intake over HTTP: accepted events per second and latency, against a bare endpoint.

    python benchmarks/ingest.py                 # 15 s of load per scenario after 3 s of warm-up, 64 connections
    python benchmarks/ingest.py --postgres      # also Journeyflow on PostgreSQL (JOURNEYFLOW_TEST_PG_URL or the
                                                # tests' default); --postgres URL names another database
    python benchmarks/ingest.py --smoke         # CI: two seconds per scenario, so this cannot rot

The load generator is wrk (Debian's package; `.ci/run` installs it), driven by `ingest.lua`:
each request is a Segment track call (or a batch of 100) with a unique messageId, the write
key as HTTP Basic as Segment sends it. An async Python client was tried first and topped out
near 500 requests/s on two cores, far below what the servers answer, so it measured itself.

The servers are uvicorn subprocesses with the same settings (uvloop, httptools, one worker
process, access log off): the floor, a bare Starlette endpoint that reads and parses the body
(`json.loads`) and answers 200, and Journeyflow's app (`api.app.create_app`, as `journeyflow
serve` builds it, with the engine and the dispatcher off so that only intake is measured) on
a fresh SQLite file, and with `--postgres` on PostgreSQL as well. Each scenario is measured on
each server back to back, so the ratio compares figures of the same minute on the same noisy
machine.

Printed per server and call: accepted requests and events per second, latency p50/p99 (wrk's),
the server process's CPU time per accepted request (from /proc: steadier than requests/s on
a shared machine), answers other than 200, and stored/200 (below). Then, per scenario, each
server beside the floor of the same run: requests per second ÷ the floor's (issue 18's aim for
single track: at least 0.5), the same by CPU per request (floor ÷ server, steadier), and for
batches the events per second against issue 18's aim of 50,000.

A 200 must mean stored. After the last scenario the Journeyflow servers are killed (SIGKILL,
no graceful shutdown), then the events of each measured run are counted in the database:
the run fails if any event answered 200 is missing, or if a server accepted nothing at all.
The database may hold a few more (requests still in flight when wrk stopped counting).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, make_url, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import connect, keys, migrate  # noqa: E402
from storage.tables import events  # noqa: E402

WRK_SCRIPT = Path(__file__).with_suffix(".lua")
BATCH_SIZE = 100
USERS = 10_000  # distinct user ids the messages cycle through: most are known after the first seconds
PG_URL = os.environ.get("JOURNEYFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STARTUP_SECONDS = 30.0
# One worker process is uvicorn's default; every server gets exactly these flags.
UVICORN_FLAGS = ("--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                 "--log-level", "warning", "--lifespan", "on")

# The floor: what any endpoint must do with an event (read the body, parse it, answer), with
# nothing of ours in between.
BARE_APP = '''
import json
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def accept(request):
    body = json.loads(await request.body())
    return JSONResponse({"success": True, "accepted": len(body["batch"]) if "batch" in body else 1})

app = Starlette(routes=[Route("/v1/track", accept, methods=["POST"]), Route("/v1/batch", accept, methods=["POST"])])
'''
JOURNEYFLOW_APP = '''
import os
from api.app import create_app
from api.settings import Settings

app = create_app(Settings(database_url=os.environ["JF_BENCH_DB"]))
'''


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    batch: int


SCENARIOS = (Scenario("single track", "/v1/track", 1), Scenario(f"batch of {BATCH_SIZE}", "/v1/batch", BATCH_SIZE))


@dataclass
class Server:
    name: str
    slug: str  # part of the messageIds of its runs: letters, digits and dashes only (no LIKE wildcards)
    url: str
    process: subprocess.Popen[bytes]
    database: str | None  # None for the bare endpoint, which stores nothing


@dataclass(frozen=True)
class Figures:
    """One wrk run, as its `done()` hook reports it."""

    requests: int
    accepted: int  # answered 200
    refused: int  # answered anything else
    socket_errors: int  # connect, read, write errors and timeouts
    seconds: float
    p50_ms: float
    p99_ms: float
    batch: int
    cpu_seconds: float | None = None  # the server process's CPU time during the run (Linux)

    @property
    def cpu_us_per_request(self) -> float | None:
        """Server CPU per accepted request: steadier than requests/s on a shared machine, where
        other processes take cores away from the server but not CPU time from its requests."""
        return None if self.cpu_seconds is None or not self.accepted else 1e6 * self.cpu_seconds / self.accepted

    @property
    def requests_s(self) -> float:
        return self.accepted / self.seconds

    @property
    def events_s(self) -> float:
        return self.accepted * self.batch / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(name: str, slug: str, app_dir: Path, module: str, database: str | None) -> Server:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if database is not None:
        env["JF_BENCH_DB"] = database
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port),
                                "--app-dir", str(app_dir), *UVICORN_FLAGS], env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: uvicorn exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Server(name, slug, f"http://127.0.0.1:{port}", process, database)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"{name} did not start within {STARTUP_SECONDS:.0f} s")


def cpu_seconds(process: subprocess.Popen[bytes]) -> float | None:
    """User and system CPU time of a running process so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def run_wrk(server: Server, scenario: Scenario, run: str, authorization: str, seconds: int, connections: int,
            threads: int) -> Figures:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
               server.url, "--", scenario.path, str(scenario.batch), run, authorization, str(USERS)]
    cpu_before = cpu_seconds(server.process)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu_after = cpu_seconds(server.process)
    lines = [line for line in done.stdout.splitlines() if line.startswith("wrk-json ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed against {server.name} ({done.returncode}):\n{done.stdout}{done.stderr}")
    data = json.loads(lines[-1].removeprefix("wrk-json "))
    errors = data["errors"]
    return Figures(requests=data["requests"], accepted=data["accepted"], refused=data["refused"],
                   socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
                   seconds=data["duration_us"] / 1e6, p50_ms=data["p50_us"] / 1e3, p99_ms=data["p99_us"] / 1e3,
                   batch=scenario.batch,
                   cpu_seconds=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before)


def prepare(database: str) -> str:
    """Migrate `database` and create a write key for this run; the key."""
    db = connect(database)
    try:
        migrate(db)
        with db.begin() as conn:
            _, key = keys.create(conn, "write", "benchmarks/ingest.py", datetime.now(UTC))
    finally:
        db.dispose()
    return key


def pg_schema(url: str, schema: str) -> str:
    """`url` in a schema of its own (created here), so that the benchmark never writes to the
    tables that tests or workers on the same database use."""
    admin = connect(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)


def drop_pg_schema(url: str, schema: str) -> None:
    admin = connect(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def stored(db: Engine, run: str) -> int:
    """Events of one wrk run in the database (its messageIds all start with `run-`)."""
    with db.connect() as conn:
        count: int = conn.execute(select(func.count()).select_from(events)
                                  .where(events.c.message_id.like(f"{run}-%"))).scalar_one()
    return count


def basic(key: str) -> str:
    """The Authorization header a Segment-compatible sender uses: the key as user name."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15, help="measured load per scenario and server")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured load before each measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (the servers need the other core)")
    parser.add_argument("--postgres", nargs="?", const=PG_URL, metavar="URL",
                        help="also measure Journeyflow on this PostgreSQL database")
    parser.add_argument("--smoke", action="store_true", help="two seconds per scenario, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.warmup, args.connections = 2, 1, 16
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (CI's .ci/run does)")

    run_id = f"b{uuid.uuid4().hex[:10]}"
    schema = f"jf_ingest_bench_{run_id}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench(Path(tmp), run_id, schema, args)
    finally:
        if args.postgres:
            drop_pg_schema(args.postgres, schema)


def bench(app_dir: Path, run_id: str, schema: str, args: argparse.Namespace) -> None:
    """Start the servers, load each with each scenario, kill them, count what was stored."""
    (app_dir / "bare_app.py").write_text(BARE_APP)
    (app_dir / "journeyflow_app.py").write_text(JOURNEYFLOW_APP)
    databases = [("Journeyflow (SQLite)", "sqlite", f"sqlite:///{app_dir / 'bench.db'}")]
    if args.postgres:
        databases.append(("Journeyflow (PostgreSQL)", "postgres", pg_schema(args.postgres, schema)))
    authorization = {slug: basic(prepare(url)) for _, slug, url in databases}
    authorization["bare"] = authorization["sqlite"]

    servers = [start("floor: bare Starlette", "bare", app_dir, "bare_app", None)]
    results: dict[tuple[str, str], Figures] = {}
    try:
        servers += [start(name, slug, app_dir, "journeyflow_app", url) for name, slug, url in databases]
        for number, scenario in enumerate(SCENARIOS):
            for server in servers:  # back to back, so that each ratio compares the same minute
                auth = authorization[server.slug]
                run_wrk(server, scenario, f"{run_id}-{server.slug}-w{number}", auth, args.warmup, args.connections,
                        args.threads)
                results[(server.slug, scenario.name)] = run_wrk(
                    server, scenario, f"{run_id}-{server.slug}-{number}", auth, args.seconds, args.connections,
                    args.threads)
    finally:
        for server in servers:  # a crash, not a shutdown: what was answered 200 must be on disk
            server.process.send_signal(signal.SIGKILL if server.database else signal.SIGTERM)
            server.process.wait()

    counts = {}
    for server in servers:
        if server.database is None:
            continue
        db = connect(server.database)
        try:
            for number, scenario in enumerate(SCENARIOS):
                counts[(server.slug, scenario.name)] = stored(db, f"{run_id}-{server.slug}-{number}")
        finally:
            db.dispose()
    report(servers, results, counts, args)


def report(servers: list[Server], results: dict[tuple[str, str], Figures], counts: dict[tuple[str, str], int],
           args: argparse.Namespace) -> None:
    print(f"wrk -t{args.threads} -c{args.connections}, {args.seconds} s per scenario after {args.warmup} s "
          f"of warm-up; uvicorn {' '.join(UVICORN_FLAGS[2:])}")
    print(f"{'server':<26} {'call':<14} {'req/s':>8} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'CPU us/req':>10} {'non-200':>7} {'stored/200':>10}")
    lost = []
    for scenario in SCENARIOS:
        for server in servers:
            f = results[(server.slug, scenario.name)]
            count = counts.get((server.slug, scenario.name))
            accepted_events = f.accepted * f.batch
            if not f.accepted:
                lost.append(f"{server.name}, {scenario.name}: no request was answered 200")
            durable = "-" if count is None else f"{count / accepted_events:.4f}" if accepted_events else "n/a"
            if count is not None and count < accepted_events:
                lost.append(f"{server.name}, {scenario.name}: {accepted_events - count} event(s) answered 200 "
                            "are not in the database")
            cpu = "-" if f.cpu_us_per_request is None else f"{f.cpu_us_per_request:,.0f}"
            print(f"{server.name:<26} {scenario.name:<14} {f.requests_s:>8,.0f} {f.events_s:>9,.0f} "
                  f"{f.p50_ms:>7.1f} {f.p99_ms:>7.1f} {cpu:>10} {f.refused + f.socket_errors:>7,} {durable:>10}")
    print("beside the floor (same run):")
    for scenario in SCENARIOS:
        bare = results[("bare", scenario.name)]
        for server in servers[1:]:
            ours = results[(server.slug, scenario.name)]
            if not bare.accepted or not ours.accepted:
                continue
            by_cpu = ("" if bare.cpu_us_per_request is None or ours.cpu_us_per_request is None
                      else f", by CPU per request {bare.cpu_us_per_request / ours.cpu_us_per_request:.2f}")
            aim = (f"; {ours.events_s:,.0f} events/s, aim 50,000" if scenario.batch > 1
                   else "; aim 0.5")
            print(f"  {scenario.name}: {server.name} ÷ floor = {ours.requests_s / bare.requests_s:.2f} "
                  f"by requests/s{by_cpu}{aim}")
    if lost:
        raise SystemExit("FAILED:\n" + "\n".join(lost))


if __name__ == "__main__":
    main()
