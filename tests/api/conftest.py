"""A real uvicorn server on loopback, on each backend, with a write key and an admin key.

The server runs in a background thread of the test process, on a socket bound to a free port,
against the `db` fixture's database, so a test can send requests with httpx and then look at
the rows directly. Keys are cached for 0 s so that revoking one takes effect at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine

from api.app import create_app
from api.settings import Settings
from storage import keys

ROOT = Path(__file__).resolve().parents[2]
STARTUP_POLLS = 500  # 10 ms apart: how long a server may take to come up before the test gives up


@dataclass
class Server:
    url: str
    db: Engine
    write: str
    admin: str
    write_id: int
    admin_id: int
    settings: Settings
    uvicorn: uvicorn.Server = field(repr=False)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_in_thread(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = free_socket()
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(STARTUP_POLLS):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    host, port = sock.getsockname()
    return server, thread, f"http://{host}:{port}"


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """A real uvicorn on loopback serving `settings` for the block; its base URL."""
    server, thread, url = serve_in_thread(settings)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join()


def start_server(db: Engine, **overrides: object) -> Iterator[Server]:
    now = Settings(database_url="sqlite://").clock.now()
    with db.begin() as conn:
        write_key, write = keys.create(conn, "write", "test producer", now)
        admin_key, admin = keys.create(conn, "admin", "test admin", now)
    url = db.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, key_cache_seconds=0, **overrides)  # type: ignore[arg-type]
    server, thread, base = serve_in_thread(settings)
    try:
        yield Server(base, db, write, admin, write_key.id, admin_key.id, settings, server)
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def server(db: Engine) -> Iterator[Server]:
    yield from start_server(db)


@dataclass
class Served:
    """`journeyflow serve` as a subprocess, with what it printed."""

    process: subprocess.Popen[str]
    url: str
    output: list[str]

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()

    def line(self, starting: str) -> str:
        return next(line.strip() for line in self.output if line.strip().startswith(starting))

    @property
    def write_key(self) -> str:
        return self.line("write key:").split(": ", 1)[1]

    @property
    def admin_key(self) -> str:
        return self.line("admin key:").split(": ", 1)[1]


def run_serve(database_url: str, *extra: str, first_start: bool = True) -> Served:
    """Start `journeyflow serve` on a free port and wait until it answers /healthz. On a first
    start, read on until it has printed the keys and the curl line."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # the child binds it; a race with another process is possible but rare
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from journeyflow.cli import main; main()", "serve", "--port", str(port),
         "--database", database_url, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.strip().startswith("curl ") or (not first_start and line.startswith("Journeyflow API on")):
            break
    url = f"http://127.0.0.1:{port}"
    for _ in range(STARTUP_POLLS):
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.01)
    else:
        process.kill()
        raise AssertionError("journeyflow serve did not answer:\n" + "".join(output))
    return Served(process, url, output)
