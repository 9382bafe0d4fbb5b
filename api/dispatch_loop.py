"""The dispatcher, run inside the API process on the embedded default: outbox rows become
messages, on a thread with its own event loop.

Its own thread because the dispatcher's database calls block (SQLite waits its turn for the
one writer): on the API's event loop they would stall every request meanwhile. One process
then does everything a small installation needs; at scale, `journeyflow dispatch` runs the same
loop in processes of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from sqlalchemy import Engine

from actions.dispatcher import Dispatcher
from actions.settings import Settings
from engine.clock import Clock

log = logging.getLogger("journeyflow.dispatch")


class DispatchLoop:
    def __init__(self, db: Engine, settings: Settings, clock: Clock) -> None:
        self.db, self.settings, self.clock = db, settings, clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="journeyflow-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        async with Dispatcher(self.db, self.settings, self.clock) as dispatcher:
            while not self._stop.is_set():
                try:
                    await dispatcher.run(stop=self._stop)
                except Exception:  # a failed batch rolled back; its rows are claimed again later
                    log.exception("dispatch batch failed")
                    await asyncio.sleep(self.settings.dispatch.poll_seconds)
