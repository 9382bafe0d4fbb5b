"""Dispatch throughput: outbox rows sent to a loopback provider that takes 20 ms per request
and fails 10% of them with a 503, beside the same requests sent with no database at all.

    python benchmarks/dispatch.py                        # 20,000 rows on SQLite, concurrency 200
    python benchmarks/dispatch.py --database postgresql+psycopg://postgres@127.0.0.1:5432/test
    python benchmarks/dispatch.py --rows 5000 --concurrency 50
    python benchmarks/dispatch.py --smoke                # CI: a few hundred rows, so this cannot rot

The provider is the generic HTTP one (with an idempotency header) against a Starlette app in a
separate process, so the server does not share our interpreter. Retries are due almost at once
(backoff base 10 ms) so the run measures them instead of waiting.

Each run prints, in the same minute against the same server, four rows:

- the same number of messages sent from one bare `httpx.AsyncClient` whose pool is sized to the
  concurrency, the same concurrency, each 503 retried at once, no database, no templates;
- the same with httpx's transport and a connection per concurrency slot, which is how the
  HTTP/2 provider (APNs) sends;
- the same through one bare `aiohttp.ClientSession`, which is how HTTP/1.1 providers send
  (actions/providers/transport.py says why): the floor of the HTTP work the dispatcher does
  here, so that dispatcher / this floor is the cost of everything else (claim, render, rate
  limits, record);
- the dispatcher end to end (claim, render, send, record), through `Dispatcher.run`.

For each: messages sent per second, requests made, the process's CPU over the phase as a share
of one core (the server runs in another process) and in microseconds per message. On a shared
machine the CPU per message is the steadier figure: a phase that gets less of a core goes slower.

`--loops asyncio uvloop` runs them on asyncio's own event loop and on uvloop, one after the
other: whether the loop's share of the CPU is worth swapping it (docs/performance.md: it is not).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import random
import socket
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, insert, make_url, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions.dispatcher import Dispatcher  # noqa: E402
from actions.settings import Section, Settings, parse_settings  # noqa: E402
from engine.clock import SystemClock  # noqa: E402
from storage import connect, migrate  # noqa: E402
from storage.tables import journeys, outbox, profiles  # noqa: E402

T = TypeVar("T")
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


class Phase:
    """Wall and process CPU time over one phase of the run."""

    def __enter__(self) -> Phase:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def figures(name: str, sent: int, requests: int, phase: Phase) -> dict[str, Any]:
    return {"name": name, "sent": sent, "requests": requests, "seconds": phase.wall, "rate": sent / phase.wall,
            "cpu_share": phase.cpu / phase.wall, "cpu_us": phase.cpu / max(sent, 1) * 1e6}


BODY = '{{"to": "+86138{n:08d}", "text": "Hi n{m}, your code is G-{n}"}}'


async def floor_client(url: str, rows: int, concurrency: int) -> int:
    """`rows` messages from one bare AsyncClient, pool sized to the concurrency; requests made."""
    requests = itertools.count(1)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            body = BODY.format(n=n, m=n % 97).encode()
            async with gate:
                while True:
                    next(requests)
                    response = await client.post(url, content=body, headers={
                        "Content-Type": "application/json", "X-Request-Id": f"bench/{n}"})
                    if response.status_code != 503:
                        response.raise_for_status()
                        return

        await asyncio.gather(*(one(n) for n in range(rows)))
    return next(requests) - 1


async def floor_aiohttp(url: str, rows: int, concurrency: int) -> int:
    """The same through one bare `aiohttp.ClientSession` whose pool is the concurrency, which is
    what HTTP/1.1 providers send through (actions/providers/transport.py); requests made."""
    import aiohttp

    requests = itertools.count(1)
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(n: int) -> None:
            body = BODY.format(n=n, m=n % 97).encode()
            async with gate:
                while True:
                    next(requests)
                    async with session.post(url, data=body, headers={
                            "Content-Type": "application/json", "X-Request-Id": f"bench/{n}"}) as response:
                        await response.read()
                        if response.status != 503:
                            if response.status >= 300:
                                raise RuntimeError(f"the floor got HTTP {response.status}")
                            return

        await asyncio.gather(*(one(n) for n in range(rows)))
    return next(requests) - 1


async def floor_slots(url: str, rows: int, concurrency: int) -> int:
    """The same through httpx's transport, one connection per slot, requests built by hand; requests made."""
    requests = itertools.count(1)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = httpx.create_ssl_context()  # one CA bundle load (60 ms), not one per transport, as the providers do
    transports = [httpx.AsyncHTTPTransport(limits=limits, verify=tls) for _ in range(concurrency)]
    free = list(transports)
    timeout = {"timeout": httpx.Timeout(10).as_dict()}
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        body = BODY.format(n=n, m=n % 97).encode()
        async with gate:
            transport = free.pop()
            try:
                while True:
                    next(requests)
                    request = httpx.Request("POST", url, content=body, extensions=timeout, headers={
                        "Content-Type": "application/json", "X-Request-Id": f"bench/{n}"})
                    response = await transport.handle_async_request(request)
                    await response.aread()
                    if response.status_code != 503:
                        if not response.is_success:
                            raise RuntimeError(f"the floor got HTTP {response.status_code}")
                        return
            finally:
                free.append(transport)

    await asyncio.gather(*(one(n) for n in range(rows)))
    for transport in transports:
        await transport.aclose()
    return next(requests) - 1


async def dispatch_all(db: Engine, settings: Settings, rows: int) -> tuple[int, int]:
    """Run the dispatcher until every row is sent; messages sent and requests made."""
    sent = requests = 0
    async with Dispatcher(db, settings, SystemClock()) as dispatcher:
        while sent < rows:
            totals = await dispatcher.run(until_idle=True)
            if not totals:
                await asyncio.sleep(0.005)  # retries not yet due
                continue
            sent += totals["sent"]
            requests += sum(totals.values()) - totals["pending"]
            failed = sum(n for status, n in totals.items() if status in ("failed", "dead", "uncertain"))
            if failed:
                raise RuntimeError(f"{failed} messages failed for good: {dict(totals)}")
    return sent, requests


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


def on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop (uvicorn's [standard] extra brings it)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run(url: str, rows: int, concurrency: int, batch: int, bare_rows: int, loop: str, console: Console
        ) -> list[dict[str, Any]]:
    """The four phases, every one on the same event loop (`loop`: asyncio's own or uvloop)."""
    run_async = on_uvloop if loop == "uvloop" else asyncio.run
    db = connect(url)
    migrate(db)
    fill(db, rows)
    process, provider_url = start_provider(seed=7)
    results = []
    try:
        run_async(floor_slots(provider_url, concurrency * 2, concurrency))  # warm the server up, untimed
        with console.status("floor: a connection per slot"), Phase() as phase:
            requests = run_async(floor_slots(provider_url, rows, concurrency))
        results.append(figures(f"{loop}: floor, httpx transport, a connection per slot", rows, requests, phase))
        with console.status("floor: one aiohttp session"), Phase() as phase:
            requests = run_async(floor_aiohttp(provider_url, rows, concurrency))
        results.append(figures(f"{loop}: floor, one aiohttp.ClientSession, pool = concurrency", rows, requests,
                               phase))
        with console.status(f"dispatcher ({db.dialect.name})"), Phase() as phase:
            sent, requests = run_async(dispatch_all(db, bench_settings(provider_url, concurrency, batch), rows))
        results.append(figures(f"{loop}: dispatcher ({db.dialect.name})", sent, requests, phase))
        with console.status("floor: one AsyncClient"), Phase() as phase:
            requests = run_async(floor_client(provider_url, bare_rows, concurrency))
        results.append(figures(f"{loop}: floor, one httpx.AsyncClient, pool = concurrency", bare_rows, requests,
                               phase))
    finally:
        process.kill()
        process.join()
        db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1_000, help="rows claimed per transaction")
    parser.add_argument("--bare-rows", type=int, help="messages for the one-AsyncClient floor (default: --rows; it "
                                                      "is slow, see actions/providers/base.py)")
    parser.add_argument("--database", help="a PostgreSQL URL: the run uses a schema of its own there "
                                           "(default: a SQLite file in a temporary directory)")
    parser.add_argument("--loops", nargs="+", choices=["asyncio", "uvloop"], default=["asyncio"],
                        help="event loops to run every phase on, one after the other (`asyncio uvloop` for both)")
    parser.add_argument("--smoke", action="store_true", help="a few hundred rows: CI's check that this still runs")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.concurrency, args.batch = 300, 50, 100
    bare_rows = args.bare_rows or args.rows
    console = Console(width=max(Console().width, 150))
    table = Table(title=f"Dispatch: {LATENCY_SECONDS * 1000:.0f} ms provider, {FAILURE_RATE:.0%} injected failures, "
                        f"concurrency {args.concurrency}, batches of {args.batch}")
    for column in ("", "messages", "requests", "seconds", "messages/s", "CPU share", "CPU us/message",
                   "dispatcher ÷ this"):
        table.add_column(column, justify="right", no_wrap=not column)
    for loop in args.loops:
        with tempfile.TemporaryDirectory() as scratch, fresh_database(args.database, Path(scratch)) as url:
            slots, aio, dispatcher, bare = run(url, args.rows, args.concurrency, args.batch, bare_rows, loop,
                                               console)
        for result in (bare, slots, aio, dispatcher):
            table.add_row(result["name"], f"{result['sent']:,}", f"{result['requests']:,}",
                          f"{result['seconds']:.1f}", f"{result['rate']:,.0f}", f"{result['cpu_share']:.2f}",
                          f"{result['cpu_us']:,.0f}", f"{dispatcher['rate'] / result['rate']:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
