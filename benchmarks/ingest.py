"""Event intake over HTTP: accepted events per second and latency, against a bare endpoint.

    python benchmarks/ingest.py            # default: 20 s of load per scenario, 64 connections
    python benchmarks/ingest.py --smoke    # CI: a second or so per scenario, so this cannot rot

Three servers are started in turn as uvicorn subprocesses on loopback with the same settings
(one worker, httptools, uvloop, access log off): `journeyflow serve`'s app on a fresh SQLite
file (engine loop off, so only intake is measured), and a bare Starlette endpoint that answers
202 without reading anything. The load generator is an async httpx client with many
connections, run in its own processes (one per core) so that it is not the bottleneck alone.
Printed: requests/s, events/s (a batch is 100 events), latency p50/p99, and the ratio of
single-track throughput to the bare endpoint's, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import connect, keys, migrate  # noqa: E402

BATCH_SIZE = 100
BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def accept(request):
    return JSONResponse({"accepted": 1}, status_code=202)

app = Starlette(routes=[Route("/v1/track", accept, methods=["POST"]), Route("/v1/batch", accept, methods=["POST"])])
'''
JOURNEYFLOW_APP = '''
import os
from api.app import create_app
from api.settings import Settings

app = create_app(Settings(database_url=os.environ["JF_BENCH_DB"]))
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(module_dir: Path, module: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port), "--no-access-log",
         "--log-level", "warning", "--http", "httptools", "--loop", "uvloop", "--app-dir", str(module_dir)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    url = f"http://127.0.0.1:{port}"
    for _ in range(500):
        try:
            httpx.post(f"{url}/v1/track", content=b"{}")
            return process, url
        except httpx.TransportError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit(f"{module} did not start")


def _body(worker: int, i: int, batch: bool) -> bytes:
    def one(n: int) -> dict[str, Any]:
        return {"type": "track", "userId": f"u{(worker * 7919 + n) % 10_000}", "event": "product_viewed",
                "properties": {"sku": f"s{n % 50}", "category": "lens"}, "messageId": f"w{worker}-{n}"}

    if batch:
        return json.dumps({"batch": [one(i * BATCH_SIZE + k) for k in range(BATCH_SIZE)]}).encode()
    return json.dumps(one(i)).encode()


async def _load(url: str, key: str, batch: bool, connections: int, seconds: float, worker: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    path = "/v1/batch" if batch else "/v1/track"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            body = _body(worker, next(counter), batch)
            began = time.perf_counter()
            response = await client.post(path, content=body, headers=headers)
            if response.status_code == 202:
                latencies.append(time.perf_counter() - began)
            else:
                failures += 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        began = time.perf_counter()
        await asyncio.gather(*(sender(client) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return {"latencies": latencies, "failures": failures, "elapsed": elapsed}


def _worker(args: tuple[str, str, bool, int, float, int]) -> dict[str, Any]:
    return asyncio.run(_load(*args))


def measure(url: str, key: str, batch: bool, connections: int, seconds: float, processes: int) -> dict[str, float]:
    per = max(1, connections // processes)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_worker, [(url, key, batch, per, seconds, w) for w in range(processes)])
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = max(r["elapsed"] for r in results)
    requests = len(latencies)
    if not requests:
        raise SystemExit(f"no request was accepted at {url} ({sum(r['failures'] for r in results)} failures)")
    return {"requests_s": requests / elapsed, "events_s": requests * (BATCH_SIZE if batch else 1) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[int(0.99 * (requests - 1))],
            "failures": float(sum(r["failures"] for r in results))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--processes", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--smoke", action="store_true", help="a second per scenario, for CI")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    connections = 8 if args.smoke else args.connections

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        Path(tmp, "journeyflow_app.py").write_text(JOURNEYFLOW_APP)
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = connect(url)
        migrate(db)
        with db.begin() as conn:
            _, key = keys.create(conn, "write", "benchmark", datetime.now(UTC))
        db.dispose()

        rows = []
        for name, module, env in (("bare Starlette 202", "bare_app", {}),
                                  ("journeyflow (SQLite)", "journeyflow_app", {"JF_BENCH_DB": url})):
            process, base = start(Path(tmp), module, env)
            try:
                for batch in (False, True):
                    figures = measure(base, key, batch, connections, seconds, args.processes)
                    rows.append((name, "batch of 100" if batch else "single track", figures))
            finally:
                process.terminate()
                process.wait()

    print(f"{'server':<22} {'call':<14} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'fail':>5}")
    for name, call, f in rows:
        print(f"{name:<22} {call:<14} {f['requests_s']:>9.0f} {f['events_s']:>10.0f} {f['p50_ms']:>8.1f} "
              f"{f['p99_ms']:>8.1f} {f['failures']:>5.0f}")
    figures = {(name, call): f for name, call, f in rows}
    for call in ("single track", "batch of 100"):
        ours, bare = figures[("journeyflow (SQLite)", call)], figures[("bare Starlette 202", call)]
        ratio = ours["requests_s"] / bare["requests_s"]
        print(f"{call}: journeyflow / bare endpoint = {ratio:.2f} (requests per second)")


if __name__ == "__main__":
    main()
