"""The process that hosts durable-rules, and the host itself.

durable-rules is C code, unmaintained since 2020, and it can abort the interpreter; so it
runs in a child process of its own (see `supervisor.py`), never in the engine's. The child
reads one JSON request a line on stdin and writes one JSON reply a line on a private copy
of stdout; fd 1 itself is pointed at stderr, because the C library prints debugging output
with printf and would corrupt the replies.

`RulesHost` is how durable-rules is used, and every choice guards one of its limits:
- stateless: each evaluation is a new session, deleted at once, so the 1,024 sessions a
  ruleset holds in memory (the next raises MemoryError) are never reached;
- the input is asserted as a fact, so every matching rule of the ruleset fires;
- its host is built without `_run`, which starts the dispatch and timer threads: no timers,
  no persistence callbacks (in-memory, 1-second resolution, and the persistence path
  segfaulted when tried); actions run synchronously inside the assertion;
- an exception in an action is swallowed by durable-rules into the session's state: it is
  read back from the state and raised as `ActionFailed`.

This module imports nothing from the project, so the child starts from its file path.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from durable import engine as durable_engine

Action = Callable[[Any], None]

_SID_NOT_FOUND = 309  # durable-rules' error code (rules.h) when a session does not exist


class ActionFailed(Exception):
    """An action raised inside durable-rules; the message is what durable-rules kept of it."""


class _QuietHost(durable_engine.Host):  # type: ignore[misc]  # durable-rules has no types
    """durable-rules' host without `_run`: no dispatch thread, no timer thread."""

    def _run(self) -> None:
        return None


class RulesHost:
    """durable-rules used statelessly: register rulesets, evaluate one fact at a time."""

    def __init__(self) -> None:
        self._host = _QuietHost()
        self._fired: list[str] = []
        self._sessions = 0  # a fresh session id per evaluation
        self.rulesets: set[str] = set()

    def register(self, name: str, rules: dict[str, Any], action: Action | None = None) -> None:
        """Register one ruleset; each rule's action records the rule's name, unless `action`
        is given (tests use it to show a failing action surfaces)."""
        runs = {rule_id: action or self._recorder(rule_id) for rule_id in rules}
        self._host.register_rulesets({name: {rule_id: {**rule, "run": runs[rule_id]}
                                             for rule_id, rule in rules.items()}})
        self.rulesets.add(name)

    def evaluate(self, name: str, fact: dict[str, Any]) -> list[str]:
        """The rules of `name` that fire on `fact`, in firing order; the session is deleted
        before returning, whatever happens."""
        self._sessions += 1
        sid = str(self._sessions)
        self._fired = []
        try:
            try:
                state = self._host.assert_fact(name, {**fact, "sid": sid})
            except durable_engine.MessageNotHandledException:
                state = None
        finally:
            self._forget(name, sid)
        if isinstance(state, dict) and "exception" in state:
            raise ActionFailed(str(state["exception"]))
        return self._fired

    def _forget(self, name: str, sid: str) -> None:
        try:
            self._host.delete_state(name, sid)
        except Exception as error:
            if not str(error).endswith(f"error code: {_SID_NOT_FOUND}"):  # no session was made
                raise

    def _recorder(self, rule_id: str) -> Action:
        def record(closure: Any) -> None:
            self._fired.append(rule_id)

        return record


def handle(host: RulesHost, request: dict[str, Any]) -> dict[str, Any]:
    """One request, one reply: `register`, `evaluate` or `status`."""
    op = request["op"]
    if op == "register":
        for name, rules in request["rulesets"].items():
            if name not in host.rulesets:  # a retried request may repeat one
                host.register(name, rules)
        return {"ok": True}
    if op == "evaluate":
        fired = []
        for name, fact in request["facts"]:
            try:
                fired.append(host.evaluate(name, fact))
            except ActionFailed as error:
                return {"error": "action", "ruleset": name, "message": str(error)}
        return {"fired": fired}
    if op == "status":
        return {"pid": os.getpid(), "threads": threading.active_count(), "rulesets": len(host.rulesets)}
    return {"error": "request", "message": f"unknown op {op!r}"}


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    host = RulesHost()
    for line in requests:
        try:
            reply = handle(host, json.loads(line))
        except Exception as error:  # a bad request or a durable-rules error code: the caller decides
            reply = {"error": "durable", "message": f"{type(error).__name__}: {error}"}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray printf output of the C library goes to stderr, not into the replies
    serve(sys.stdin.buffer, replies)  # returns at EOF: the parent closed the pipe or died


if __name__ == "__main__":
    main()
