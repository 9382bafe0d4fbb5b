"""The official Segment-spec clients, unmodified, against a real `journeyflow serve` (issue 14).

The intake promises that a producer can point Segment's or RudderStack's SDK at it unchanged.
That is only true if the SDKs read our answers as success and we read their bodies as they
send them: each SDK has its own idea of success (segment-analytics-python takes any 2xx,
rudder-sdk-python only a 200, analytics-node any 2xx or 3xx), its own batching and retries, and
its own encoding (RudderStack gzips by default; analytics-node cannot, so its gzip run goes
through the SDK's `httpClient` extension point). Hand-written requests cannot show that, so
these tests run the real clients over loopback and then read the `events` table.

Each run sends every call type, then a burst of tracks, and checks that every message is stored
once, as the call it was (type, name, profile), and that the client reported nothing: no
`on_error`, no warning or error from its logger, no answer other than a 200 with
`"success": true`. The server keeps its engine on, as a producer would find it: group and
identify traits reach the profile only when the engine applies the event, and intake then runs
beside the engine's writes, not alone.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, func, select

from engine.identity import MERGE_TYPE
from storage.tables import events, identities, profiles

from .conftest import ROOT, Served, run_serve

BURST = 3000  # tracks sent after the call types: enough for dozens of batches per client
BURST_USERS = 50
RETRIES = 3  # per batch: a real retry policy, but a broken server fails the test in seconds, not hours
FLUSH_DEADLINE = 180.0  # seconds for a client to hand over everything (a hang guard, not a speed bound)
STORED_DEADLINE = 120.0  # seconds for the engine to apply what was accepted (likewise)
NODE_PROJECT = ROOT / "tests/api/sdk_node"
NODE_PACKAGE = NODE_PROJECT / "node_modules/@segment/analytics-node"
NODE_INSTALL = "npm ci --prefix tests/api/sdk_node"
NODE_MAJOR = 20  # what @segment/analytics-node 3 declares in `engines`

USER, ANON, GROUP = "user-1", "anon-1", "store-0571"
IDENTIFY_TRAITS = {"name": "Lin", "email": "lin@example.com", "plan": "trial"}
GROUP_TRAITS = {"name": "West Lake store", "plan": "enterprise"}


@dataclass(frozen=True)
class Call:
    """One SDK call (Python keyword arguments) and the event row it must become."""

    method: str
    kwargs: dict[str, Any]
    type: str
    name: str | None
    user: str  # the user id whose profile the row must belong to


def plan() -> list[Call]:
    """Every call type, named and unnamed pages and screens, then the burst. The page comes from
    an anonymous visitor whom the alias then ties to the user, so its row must end up on the
    user's profile whichever way the merge goes."""
    calls = [
        Call("page", {"anonymous_id": ANON, "name": "Pricing", "properties": {"path": "/pricing"}},
             "page", "Viewed Pricing Page", USER),
        Call("identify", {"user_id": USER, "traits": IDENTIFY_TRAITS}, "identify", None, USER),
        Call("alias", {"previous_id": ANON, "user_id": USER}, "alias", None, USER),
        Call("group", {"user_id": USER, "group_id": GROUP, "traits": GROUP_TRAITS}, "group", None, USER),
        Call("track", {"user_id": USER, "event": "Order Completed", "properties": {"order_id": "o-1001", "total": 58}},
             "track", "Order Completed", USER),
        Call("page", {"user_id": USER, "category": "Docs", "name": "Install"},
             "page", "Viewed Docs Install Page", USER),
        Call("page", {"user_id": USER}, "page", "Loaded a Page", USER),
        Call("screen", {"user_id": USER, "name": "Settings", "properties": {"tab": "privacy"}},
             "screen", "Viewed Settings Screen", USER),
        Call("screen", {"user_id": USER}, "screen", "Loaded a Screen", USER),
    ]
    calls += [Call("track", {"user_id": f"burst-{i % BURST_USERS}", "event": "Burst", "properties": {"i": i}},
                   "track", "Burst", f"burst-{i % BURST_USERS}") for i in range(BURST)]
    return calls


@dataclass
class Delivery:
    """What one client run sent and what it reported."""

    client: str
    message_ids: list[str | None]  # by position in the plan
    errors: list[str] = field(default_factory=list)
    requests: int = 0


# --------------------------------------------------------------------------- the server


@contextmanager
def serving(db: Engine) -> Iterator[tuple[Served, list[str]]]:
    """`journeyflow serve` on the test's database, its output read on a thread so that it never
    blocks on a full pipe and a failure can show what it printed."""
    served = run_serve(db.url.render_as_string(hide_password=False))
    lines = list(served.output)
    assert served.process.stdout is not None
    reader = threading.Thread(target=lines.extend, args=(served.process.stdout,), daemon=True)
    reader.start()
    try:
        yield served, lines
    finally:
        served.process.terminate()
        served.process.wait()
        reader.join()  # at the pipe's end, so closing it below races no read
        served.stop()


# --------------------------------------------------------------------------- the Python clients


class _Collected(logging.Handler):
    """Every warning or error an SDK logs: both log a failed upload before (or instead of)
    calling `on_error`, and log a full queue without calling it at all."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(f"log {record.name} {record.levelname}: {record.getMessage()}")


def _answers(errors: list[str], gzip: bool, counted: list[int]) -> Callable[..., None]:
    """A `requests` response hook that checks each answer the way the contract states it (200,
    `"success": true`) and that the body went out encoded as configured. It observes the SDK's
    own session; nothing the SDK does is replaced."""
    encoding = "gzip" if gzip else None

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        counted.append(1)
        sent_as = response.request.headers.get("Content-Encoding")
        if sent_as != encoding:
            errors.append(f"a batch went out with Content-Encoding {sent_as!r}, configured {encoding!r}")
        try:
            success = response.json().get("success") is True
        except (ValueError, AttributeError):
            success = False
        if response.status_code != 200 or not success:
            errors.append(f"{response.request.method} {response.url} answered {response.status_code}: "
                          f"{response.text[:300]}")

    return hook


def _finish(client: Any, errors: list[str]) -> None:
    """flush() (wait until the queue is empty: every batch answered or given up on), then
    shutdown() (flush again and join the consumer threads). Both SDKs block forever on a
    consumer that died, so this runs on a thread with a deadline."""

    def flush_and_shut_down() -> None:
        client.flush()
        client.shutdown()

    finisher = threading.Thread(target=flush_and_shut_down, daemon=True)
    finisher.start()
    finisher.join(FLUSH_DEADLINE)
    assert not finisher.is_alive(), (f"the client did not flush within {FLUSH_DEADLINE:.0f} s; "
                                     f"{client.queue.qsize()} messages still queued; errors so far: {errors[:5]}")
    if not client.queue.empty():
        errors.append(f"{client.queue.qsize()} messages still queued after shutdown()")
    errors.extend(f"consumer {c.name} still running after shutdown()" for c in client.consumers if c.is_alive())


# the distribution, its import name, and the loggers it reports problems on (rudder retries
# through `backoff`, which logs the give-up)
PYTHON_SDKS = {"segment-analytics-python": ("segment.analytics", ["segment"]),
               "rudder-sdk-python": ("rudderstack.analytics", ["rudderstack", "backoff"])}


def send_with_python_sdk(name: str, served: Served, gzip: bool, calls: list[Call]) -> Delivery:
    """Run `plan()` through one of the Python SDKs, as its README configures it, with only the
    retries bounded."""
    package_name, loggers = PYTHON_SDKS[name]
    package = importlib.import_module(package_name)
    request = importlib.import_module(f"{package_name}.request")
    delivery = Delivery(f"{name} {package.__version__}", [])
    errors = delivery.errors

    def on_error(error: Exception, batch: list[dict[str, Any]]) -> None:
        errors.append(f"on_error: {error!r} ({len(batch)} messages)")

    handler = _Collected(errors)
    for logger in loggers:
        logging.getLogger(logger).addHandler(handler)
    counted: list[int] = []
    hook = _answers(errors, gzip, counted)
    session: requests.Session = request._session  # the SDK's module-level session, observed
    session.hooks["response"].append(hook)
    try:
        # segment's and rudder's Client take the same arguments; rudder calls the URL the data
        # plane URL (`dataPlaneUrl` at module level), `host` on the Client.
        client = package.Client(served.write_key, host=served.url, gzip=gzip, on_error=on_error, max_retries=RETRIES)
        for i, call in enumerate(calls):
            queued, message = getattr(client, call.method)(**call.kwargs)
            if not queued:
                errors.append(f"{call.method} #{i} was not queued (the SDK's queue was full)")
            delivery.message_ids.append(message["messageId"])
        _finish(client, errors)
    finally:
        session.hooks["response"].remove(hook)
        for logger in loggers:
            logging.getLogger(logger).removeHandler(handler)
    delivery.requests = len(counted)
    return delivery


# --------------------------------------------------------------------------- the Node client

_CAMEL = {"user_id": "userId", "anonymous_id": "anonymousId", "previous_id": "previousId", "group_id": "groupId"}


def node_or_skip() -> str:
    """The node executable, with @segment/analytics-node installed; otherwise skip, or fail under
    CI=true, where this client must be tested."""
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = f"node is not on PATH (Node {NODE_MAJOR}+ and npm are needed, then `{NODE_INSTALL}`)"
    elif not NODE_PACKAGE.is_dir():
        problem = f"@segment/analytics-node is not installed: run `{NODE_INSTALL}`"
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR:
            problem = f"node {version} is too old for @segment/analytics-node (it needs {NODE_MAJOR}+)"
    if problem is None:
        assert node is not None
        return node
    if os.environ.get("CI") == "true":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


def send_with_node_sdk(node: str, served: Served, gzip: bool, calls: list[Call]) -> Delivery:
    """Run `plan()` through tests/api/sdk_node/send.js and read its summary."""
    payload = {"url": served.url, "writeKey": served.write_key, "gzip": gzip, "maxRetries": RETRIES,
               "calls": [{"method": c.method, "args": {_CAMEL.get(k, k): v for k, v in c.kwargs.items()}}
                         for c in calls]}
    try:
        ran = subprocess.run([node, str(NODE_PROJECT / "send.js")], input=json.dumps(payload), capture_output=True,
                             text=True, cwd=NODE_PROJECT, timeout=FLUSH_DEADLINE)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"analytics-node did not finish within {FLUSH_DEADLINE:.0f} s: "
                             f"{expired.stderr!r}") from None
    assert ran.returncode == 0, f"send.js failed ({ran.returncode}):\n{ran.stderr}"
    summary = json.loads(ran.stdout)
    delivery = Delivery(f"@segment/analytics-node {summary['version']}", summary["messageIds"],
                        list(summary["errors"]), summary["requests"])
    if ran.stderr.strip():  # the SDK warns on the console (overlapping flushes, for one)
        delivery.errors.append(f"stderr: {ran.stderr.strip()[:500]}")
    if summary["unexpectedCount"]:
        delivery.errors.append(f"{summary['unexpectedCount']} answers were not a 200 with success: true "
                               f"({summary['statuses']}), for example {summary['unexpected']}")
    expected_gzipped = summary["requests"] if gzip else 0
    if summary["gzipped"] != expected_gzipped:
        delivery.errors.append(f"{summary['gzipped']} of {summary['requests']} requests gzipped, gzip={gzip}")
    return delivery


# --------------------------------------------------------------------------- what was stored


def wait_until_applied(db: Engine, delivery: Delivery, sent: int, output: list[str]) -> None:
    """A 200 means the batch is committed, so once the client has flushed, the rows it was
    answered for are there; the engine applies them after. Wait (boundedly) until it has, so
    the profile traits can be read. A client that reported errors may never have delivered
    everything: then only wait for what arrived, and let `check_stored` say what is missing."""
    expected = 0 if delivery.errors else sent
    deadline = time.monotonic() + STORED_DEADLINE
    while True:
        with db.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
            pending = conn.execute(select(func.count()).select_from(events)
                                   .where(events.c.processed_at.is_(None))).scalar_one()
        if stored >= expected and not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"after {STORED_DEADLINE:.0f} s, {stored} of {sent} events stored and {pending} "
                                 "not yet applied; the server said:\n" + "".join(output[-40:]))
        time.sleep(0.1)


def check_stored(db: Engine, calls: list[Call], delivery: Delivery, gzip: bool) -> None:
    """Every message once, as the call it was, on the right profile; then the figures."""
    with db.connect() as conn:
        # An alias that merges two profiles also leaves the engine's own row (`identity.MERGE_TYPE`,
        # for re-evaluating conditions), which no client sent.
        rows = conn.execute(select(events.c.message_id, events.c.type, events.c.name, events.c.profile_id,
                                   events.c.properties).where(events.c.type != MERGE_TYPE)).all()
        owner = dict(conn.execute(select(identities.c.value, identities.c.profile_id)
                                  .where(identities.c.kind == "user_id")).all())
        user_traits = conn.execute(select(profiles.c.traits).where(profiles.c.id == owner.get(USER))).scalar()

    sent_ids = [m for m in delivery.message_ids if m is not None]
    counts = Counter(row.message_id for row in rows)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\n{delivery.client} on {db.dialect.name}, gzip {'on' if gzip else 'off'}: sent {len(calls)}, "
          f"stored {len(rows)}, duplicates {duplicates}, errors {len(delivery.errors)}, requests {delivery.requests}")

    assert delivery.errors == [], f"{delivery.client} reported {len(delivery.errors)} errors: {delivery.errors[:10]}"
    assert len(sent_ids) == len(calls), f"{len(calls) - len(sent_ids)} calls got no message id from the client"
    assert len(set(sent_ids)) == len(sent_ids), "the client gave two calls one message id"
    assert duplicates == 0, f"message ids stored twice: {[m for m, n in counts.items() if n > 1][:10]}"
    missing = set(sent_ids) - set(counts)
    unexpected = set(counts) - set(sent_ids)
    assert not missing and not unexpected, (f"{len(missing)} sent messages not stored (e.g. {sorted(missing)[:5]}), "
                                            f"{len(unexpected)} stored that were never sent")
    assert len(rows) == len(calls)

    by_id = {row.message_id: row for row in rows}
    wrong = []
    for i, (call, message_id) in enumerate(zip(calls, sent_ids, strict=True)):
        row = by_id[message_id]
        got = (row.type, row.name, row.profile_id)
        want = (call.type, call.name, owner.get(call.user))
        if got != want:
            wrong.append(f"#{i} {call.method}: stored (type, name, profile) {got}, expected {want}")
        elif call.name == "Burst" and row.properties != call.kwargs["properties"]:
            wrong.append(f"#{i}: stored properties {row.properties}, sent {call.kwargs['properties']}")
    assert wrong == [], f"{len(wrong)} events stored wrongly: {wrong[:10]}"

    # identify's traits and the group (id and traits) are on the profile the engine applied them to
    assert user_traits is not None, f"no profile for {USER}"
    assert {k: user_traits.get(k) for k in IDENTIFY_TRAITS} == IDENTIFY_TRAITS
    assert user_traits.get("group") == {**GROUP_TRAITS, "id": GROUP}
    assert user_traits.get("groups") == [GROUP]


# --------------------------------------------------------------------------- the tests

GZIP = pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])


@GZIP
@pytest.mark.parametrize("sdk", list(PYTHON_SDKS))
def test_python_sdk_delivers_every_call_once(db: Engine, sdk: str, gzip: bool) -> None:
    calls = plan()
    with serving(db) as (served, output):
        delivery = send_with_python_sdk(sdk, served, gzip, calls)
        wait_until_applied(db, delivery, len(calls), output)
    check_stored(db, calls, delivery, gzip)


@GZIP
def test_segment_node_sdk_delivers_every_call_once(db: Engine, gzip: bool) -> None:
    node = node_or_skip()
    calls = plan()
    with serving(db) as (served, output):
        delivery = send_with_node_sdk(node, served, gzip, calls)
        wait_until_applied(db, delivery, len(calls), output)
    check_stored(db, calls, delivery, gzip)
