"""What the routes share, built once when the app starts: the database, the runtime, the
group-commit queue, the key store, the engine loop.

SQLite has one writer at a time, and a transaction that read before it writes fails at once
(rather than waiting) if another connection wrote in between. So on SQLite every write of this
process goes through one lock: the group commit, the engine loop, and management writes. The
runtime's in-memory view of live journeys is shared too, so publishing, pausing and entering
hold the same lock on every backend.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Engine
from starlette.requests import Request

from engine.messages import Message
from engine.runtime import Runtime

from .auth import KeyStore
from .engine_loop import EngineLoop
from .ingest_queue import IngestQueue
from .settings import Settings

T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Engine
    runtime: Runtime
    keys: KeyStore
    queue: IngestQueue
    lock: threading.RLock
    engine: EngineLoop | None = None

    @property
    def embedded(self) -> bool:
        return self.db.dialect.name == "sqlite"

    def writing(self) -> AbstractContextManager[object]:
        """Held around every write on SQLite; nothing on PostgreSQL, which locks rows itself."""
        return self.lock if self.embedded else contextlib.nullcontext()

    def accept(self, messages: Sequence[Message]) -> int:
        with self.writing():
            return self.runtime.accept(messages)

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run blocking database work on a worker thread."""
        return await anyio.to_thread.run_sync(function, *args)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
