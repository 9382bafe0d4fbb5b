"""The engine's side of the durable-rules child: start it, talk to it, restart it, stop it.

Why a child at all: durable-rules is C code that can abort the interpreter, and the engine
must survive that. A crash (or a reply that does not come) costs one evaluation: the child is
started afresh, every live ruleset is registered again, and the request is sent once more.
Only if the fresh child fails on the same request too does `DurableChildFailed` reach the
caller; the engine's batch then rolls back and its events stay stored, so none is lost.

Never a leaked process: the child exits when its stdin closes (because we closed it or
because this process died); `close()` and a `weakref.finalize`, which also runs at
interpreter exit, close that pipe, wait briefly, and kill the child if it is still there.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from .errors import DurableActionFailed, DurableChildFailed, DurableError

CHILD_SCRIPT: Final = Path(__file__).with_name("child.py")
REPLY_TIMEOUT: Final = 60.0  # seconds; a child silent for longer counts as hung and is killed
STOP_GRACE: Final = 2.0  # seconds a child gets to exit on EOF before it is killed
STALE_RULESETS: Final = 256  # rulesets registered but no longer live before a fresh child is due
_READ_SIZE: Final = 1 << 16

Definition = dict[str, Any]


class _ChildLost(Exception):
    """The child died or stopped answering: a restart and one retry are in order."""


class ChildProcess:
    """One durable-rules child and the rulesets it must hold."""

    def __init__(self, reply_timeout: float = REPLY_TIMEOUT) -> None:
        self.reply_timeout = reply_timeout
        self.restarts = 0
        self._live: dict[str, Definition] = {}
        self._registered: set[str] = set()
        self._process: subprocess.Popen[bytes] | None = None
        self._stop: weakref.finalize[Any, Any] | None = None
        self._buffer = bytearray()
        self._closed = False
        self._lock = threading.Lock()  # one request at a time on the pipe, whichever thread asks

    @property
    def pid(self) -> int:
        """The running child's process id (started if need be)."""
        return self._running().pid

    def load(self, rulesets: Mapping[str, Definition]) -> None:
        """Make these the live rulesets: register the new ones. Rulesets cannot be removed
        from durable-rules, so once enough dead ones pile up the child is started afresh."""
        self._live = dict(rulesets)
        if len(self._registered - self._live.keys()) > STALE_RULESETS:
            self._shutdown()
        missing = {name: rules for name, rules in self._live.items() if name not in self._registered}
        if missing or self._process is None:  # a fresh child registers them all as it starts
            self._request({"op": "register", "rulesets": missing})
            self._registered |= missing.keys()

    def evaluate(self, facts: list[tuple[str, dict[str, Any]]]) -> list[list[str]]:
        """For each (ruleset, fact), the ids of the rules that fired."""
        reply = self._request({"op": "evaluate", "facts": facts})
        fired: list[list[str]] = reply["fired"]
        return fired

    def status(self) -> dict[str, Any]:
        """The child's own view: its pid, thread count and number of rulesets."""
        return self._request({"op": "status"})

    def close(self) -> None:
        """Stop the child for good; a closed matcher cannot evaluate again."""
        with self._lock:
            self._closed = True
            self._shutdown()

    # ------------------------------------------------------------------ the process

    def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._request_once(payload)

    def _request_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = self._exchange(self._running(), payload)
        except _ChildLost:
            self._shutdown()
            self.restarts += 1
            try:
                reply = self._exchange(self._running(), payload)
            except _ChildLost as again:
                self._shutdown()
                raise DurableChildFailed(f"the durable-rules child failed twice on one request: {again}") from again
        if "error" in reply:
            if reply["error"] == "action":
                raise DurableActionFailed(reply["message"], reply["ruleset"])
            raise DurableError(f"durable-rules refused a request: {reply['message']}")
        return reply

    def _running(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise DurableError("the durable-rules matcher is closed")
        if self._process is None:
            process = subprocess.Popen([sys.executable, str(CHILD_SCRIPT)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE)
            self._process = process
            self._stop = weakref.finalize(self, _stop_process, process)
            self._buffer.clear()
            if self._live:
                reply = self._exchange(process, {"op": "register", "rulesets": self._live})
                if "error" in reply:
                    self._shutdown()
                    raise DurableError(f"durable-rules refused a ruleset: {reply['message']}")
            self._registered = set(self._live)
        return self._process

    def _shutdown(self) -> None:
        if self._stop is not None:
            self._stop()
        self._process = self._stop = None
        self._registered = set()

    def _exchange(self, process: subprocess.Popen[bytes], payload: dict[str, Any]) -> dict[str, Any]:
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps(payload).encode() + b"\n")
            process.stdin.flush()
        except OSError as error:  # BrokenPipeError: it is gone
            raise _ChildLost(f"cannot write to it ({error})") from error
        reply: dict[str, Any] = json.loads(self._read_line(process))
        return reply

    def _read_line(self, process: subprocess.Popen[bytes]) -> bytes:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        deadline = time.monotonic() + self.reply_timeout
        while (end := self._buffer.find(b"\n")) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _ChildLost(f"no reply within {self.reply_timeout:g}s")
            chunk = os.read(fd, _READ_SIZE)
            if not chunk:
                raise _ChildLost(f"it exited (status {process.wait()})")
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 1]
        return line


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """Close its stdin (it exits at EOF), give it a moment, then kill it; reap it either way."""
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):  # a dead child's pipe may refuse the flush
                pipe.close()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
