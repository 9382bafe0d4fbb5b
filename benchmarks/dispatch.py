"""Dispatch throughput: outbox rows sent to a loopback provider that takes 20 ms per request
and fails 10% of them with a 503.

    python benchmarks/dispatch.py                        # 100,000 rows on SQLite, concurrency 200
    python benchmarks/dispatch.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/dispatch.py --rows 20000 --concurrency 50
    python benchmarks/dispatch.py --smoke                # CI: a few hundred rows, so this cannot rot

The provider is the generic HTTP one (with an idempotency header) against a Starlette app in a
separate process, so the server does not share our interpreter. Retries are due almost at once
(backoff base 10 ms) so the run measures them instead of waiting. Printed: messages sent per
second end to end (claim, render, send, record), total attempts, and the share of attempts that
were retries; with a 10% failure rate about 10% is expected.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, insert, make_url, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.dispatcher import Dispatcher  # noqa: E402
from actions.settings import Section, Settings, parse_settings  # noqa: E402
from engine.clock import SystemClock  # noqa: E402
from storage import connect, migrate  # noqa: E402
from storage.tables import journeys, outbox, profiles  # noqa: E402

LATENCY_SECONDS = 0.020
FAILURE_RATE = 0.10
INSERT_CHUNK = 5_000
START = datetime(2026, 6, 1, tzinfo=UTC)


def provider_app(seed: int) -> Any:
    """A gateway that answers after 20 ms, and 503 for one request in ten."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    rng = random.Random(seed)

    async def send(request: Request) -> JSONResponse:
        await request.body()
        await asyncio.sleep(LATENCY_SECONDS)
        if rng.random() < FAILURE_RATE:
            return JSONResponse({"error": "injected"}, status_code=503)
        return JSONResponse({"id": request.headers.get("x-request-id")})

    return Starlette(routes=[Route("/send", send, methods=["POST"])])


def _serve(port: int, seed: int) -> None:
    import uvicorn

    uvicorn.run(provider_app(seed), host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none",
                backlog=4096)


def start_provider(seed: int) -> tuple[BaseProcess, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(port, seed), daemon=True)
    process.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/send"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the loopback provider did not start")


def fill(db: Engine, rows: int) -> None:
    """`rows` due sms rows, each for its own profile, as the engine writes them."""
    with db.begin() as conn:
        journey_id = conn.execute(insert(journeys).values(slug="bench", name="bench", created_at=START,
                                                          updated_at=START).returning(journeys.c.id)).scalar_one()
        first = (conn.execute(select(profiles.c.id).order_by(profiles.c.id.desc()).limit(1)).scalar() or 0) + 1
        for start in range(0, rows, INSERT_CHUNK):
            count = min(INSERT_CHUNK, rows - start)
            conn.execute(insert(profiles), [{"id": first + start + i, "traits": {"phone": f"+86138{start + i:08d}",
                                                                                  "first_name": f"n{i % 97}"},
                                             "created_at": START, "updated_at": START} for i in range(count)])
            conn.execute(insert(outbox), [{
                "idempotency_key": f"bench/{start + i}", "profile_id": first + start + i, "journey_id": journey_id,
                "step_id": "hello", "channel": "sms", "send_at": START, "status": "pending", "created_at": START,
                "updated_at": START,
                "payload": {"text": "Hi {{ user.first_name }}, your code is {{ gift.code }}", "template": None,
                            "title": None, "results": {"gift": {"code": f"G-{start + i}"}}},
            } for i in range(count)])
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('profiles', 'id'), "
                              "(SELECT max(id) FROM profiles))"))


def bench_settings(url: str, concurrency: int, batch: int) -> Settings:
    return parse_settings(Section({
        "dispatch": {"concurrency": concurrency, "batch_size": batch, "lease_seconds": 600,
                     "retry": {"max_attempts": 20, "base_seconds": 0.01, "max_seconds": 0.05}},
        "guard": {"allow_private": True},
        "sms": {"provider": "http", "rate_per_second": 1_000_000, "burst": 1_000_000, "timeout_seconds": 10,
                "http": {"url": url, "body": '{"to": {{ to | tojson }}, "text": {{ text | tojson }}}',
                         "idempotency_header": "X-Request-Id", "message_id_field": "id"}},
    }))


async def dispatch_all(db: Engine, settings: Settings, rows: int, progress: Progress) -> dict[str, int]:
    task = progress.add_task("dispatching", total=rows)
    totals = {"sent": 0, "attempts": 0, "retries": 0}
    async with Dispatcher(db, settings, SystemClock()) as dispatcher:
        while totals["sent"] < rows:
            report = await dispatcher.dispatch_once()
            if not report.claimed:
                await asyncio.sleep(0.005)  # retries not yet due
                continue
            totals["sent"] += report.statuses["sent"]
            totals["attempts"] += report.claimed - report.statuses["pending"]
            totals["retries"] += report.retries
            progress.update(task, completed=totals["sent"])
            failed = sum(n for status, n in report.statuses.items() if status in ("failed", "dead", "uncertain"))
            if failed:
                raise RuntimeError(f"{failed} messages failed for good: {dict(report.statuses)}")
    return totals


@contextmanager
def fresh_database(url: str | None, scratch: Path) -> Iterator[str]:
    """A SQLite file in `scratch`, or a new schema of its own on the PostgreSQL server at `url`
    (dropped afterwards), so that the run never touches anyone's tables."""
    if url is None:
        yield f"sqlite:///{scratch / 'dispatch.db'}"
        return
    admin = connect(url)
    schema = f"jf_bench_dispatch_{os.getpid()}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(url: str, rows: int, concurrency: int, batch: int, console: Console) -> dict[str, Any]:
    db = connect(url)
    migrate(db)
    fill(db, rows)
    process, provider_url = start_provider(seed=7)
    try:
        with Progress(console=console, transient=True) as progress:
            started = time.perf_counter()
            totals = asyncio.run(dispatch_all(db, bench_settings(provider_url, concurrency, batch), rows, progress))
            elapsed = time.perf_counter() - started
    finally:
        process.kill()
        process.join()
        db.dispose()
    return {"backend": db.dialect.name, "rows": rows, "concurrency": concurrency, "batch": batch,
            "seconds": elapsed, "rate": totals["sent"] / elapsed, "attempts": totals["attempts"],
            "retry_share": totals["retries"] / max(totals["attempts"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1_000, help="rows claimed per transaction")
    parser.add_argument("--database", help="a PostgreSQL URL: the run uses a schema of its own there "
                                           "(default: a SQLite file in a temporary directory)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred rows: CI's check that this still runs")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.concurrency, args.batch = 300, 50, 100
    console = Console()
    with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database, Path(scratch)) as url:
        result = run(url, args.rows, args.concurrency, args.batch, console)
    table = Table(title=f"Dispatch: {LATENCY_SECONDS * 1000:.0f} ms provider, {FAILURE_RATE:.0%} injected failures")
    for column in ("backend", "rows", "concurrency", "batch", "seconds", "messages/s", "attempts", "retries"):
        table.add_column(column, justify="right")
    table.add_row(result["backend"], f"{result['rows']:,}", str(result["concurrency"]), str(result["batch"]),
                  f"{result['seconds']:.1f}", f"{result['rate']:,.0f}", f"{result['attempts']:,}",
                  f"{result['retry_share']:.1%}")
    console.print(table)


if __name__ == "__main__":
    main()
