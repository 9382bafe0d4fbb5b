"""Every hot query of the intake and apply paths reaches its rows through an index, on both backends.

Why a test on plans: a scan costs nothing at the sizes tests and small benchmarks use and only
shows at hundreds of thousands of rows (docs/performance.md: the live-run lookup and the coupon
claim each hid one until a million-row run; the identity lookup of `engine/intake.py` scanned
every identity). The plan says so at any size. The SQL is the code's own: a small real workload
(examples live, new and known people, a merge, an alias, coupons, goals, caps, held messages,
timers, a dispatcher claim) runs with a `before_cursor_execute` listener that records every
statement with its parameters, and each is then explained with those parameters.

- SQLite: `EXPLAIN QUERY PLAN`. No `ANALYZE` is ever run, so its choices do not depend on how
  many rows there are: what it picks here it picks at a million. Each hot query names the ways it
  may reach a big table (an index and the columns it binds); anything else, a `SCAN` of the table
  above all, fails.
- PostgreSQL: `EXPLAIN` with `enable_seqscan = off`, which asks whether an index *can* serve the
  query (on tables this small the planner would rightly scan). Its choice between indexes depends
  on statistics, so only "no sequential scan of a big table, and an index reaches the table" is
  asserted, and for upserts the conflict arbiter index.

How fast each query is at a million rows belongs to `benchmarks/engine.py --lookups`, not here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, select, tuple_

from actions import outbox as dispatch_store
from dsl.graph import CouponNode
from engine.clock import VirtualClock
from engine.intake import owners_of
from engine.messages import Message, parse_message
from engine.runtime import Runtime
from storage import coupons
from storage.tables import identities

from ..engine.workload import generate_messages

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)

# Tables that grow with users or traffic; the others (journeys, versions, pools...) hold a few
# rows per journey, and reading all of them is fine. Aliases the code gives them, too.
BIG_TABLES = frozenset({"profiles", "identities", "events", "journey_runs", "timers", "outbox", "coupon_codes",
                        "conversions", "step_counters"})
ALIASES = {"earlier": "coupon_codes", "held": "coupon_codes", "trigger": "events"}
PRIMARY_KEY = r"USING INTEGER PRIMARY KEY \(rowid=\?\)"


@dataclass(frozen=True)
class Hot:
    """A hot query: how to find it among the captured statements, which big table it is about,
    and the only ways SQLite may reach each big table in its plan (regular expressions over the
    plan's SEARCH lines, index and bound columns). `arbiter`: an upsert's conflict index on
    PostgreSQL. `known_bad`: why SQLite's plan fails today (the test is then a strict xfail)."""

    name: str
    pattern: str
    table: str
    sqlite: tuple[str, ...] = ()
    arbiter: str | None = None
    known_bad: str | None = None


def _index(name: str, bound: str) -> str:
    return rf"USING (?:COVERING )?INDEX {name} \({re.escape(bound)}\)"


HOT = [
    # intake
    Hot("message ids already stored", r"^SELECT events\.message_id FROM events WHERE events\.message_id IN \(",
        "events", (_index("sqlite_autoindex_events_1", "message_id=?"),)),
    Hot("identity owners, a kind at a time (intake)",
        r"^SELECT identities\.kind, identities\.value, identities\.profile_id FROM identities "
        r"WHERE identities\.kind = \S+ AND identities\.value IN \(",
        "identities", (_index("sqlite_autoindex_identities_1", "kind=? AND value=?"),)),
    Hot("one identity's owner (One-ID, previousId)",
        r"^SELECT identities\.profile_id FROM identities WHERE identities\.kind = \S+ AND identities\.value = ",
        "identities", (_index("sqlite_autoindex_identities_1", "kind=? AND value=?"),)),
    Hot("a profile's user ids (One-ID)",
        r"^SELECT identities\.value FROM identities WHERE identities\.profile_id = ",
        "identities", (_index("ix_identities_profile_id", "profile_id=?"),)),
    Hot("following merges", r"^SELECT profiles\.merged_into FROM profiles WHERE profiles\.id = ", "profiles",
        (PRIMARY_KEY,)),
    Hot("new events", r"^INSERT INTO events \(.*ON CONFLICT \(message_id\) DO NOTHING", "events",
        arbiter="uq_events_message_id"),
    Hot("a merge moves the absorbed profile's codes",
        r"^UPDATE coupon_codes SET profile_id=\S+ WHERE coupon_codes\.pool_id IN \(SELECT coupon_pools\.id",
        "coupon_codes", (_index("ix_coupon_codes_pool_id_profile_id", "pool_id=? AND profile_id=?"),)),
    Hot("a merge moves the absorbed profile's events",
        r"^UPDATE events SET profile_id=\S+ WHERE events\.profile_id = ", "events",
        (_index("ix_events_profile_id_name_occurred_at", "profile_id=?"),)),
    Hot("a merge moves the absorbed profile's runs",
        r"^UPDATE journey_runs SET profile_id=\S+ WHERE journey_runs\.profile_id = ", "journey_runs",
        (_index("ix_journey_runs_profile_id_journey_id_entered_at", "profile_id=?"),)),
    Hot("a merge moves the absorbed profile's messages",
        r"^UPDATE outbox SET profile_id=\S+ WHERE outbox\.profile_id = ", "outbox",
        (_index("ix_outbox_profile_id_channel_send_at", "profile_id=?"),)),
    Hot("a merge moves the absorbed profile's identities",
        r"^UPDATE identities SET profile_id=\S+ WHERE identities\.profile_id = ", "identities",
        (_index("ix_identities_profile_id", "profile_id=?"),)),
    # apply
    Hot("unprocessed events", r"FROM events WHERE events\.processed_at IS NULL ORDER BY events\.id", "events",
        # A scan of the partial index holds only the rows not yet processed: what the query wants.
        (r"^SCAN events USING INDEX ix_events_unprocessed$",)),
    Hot("a batch's profiles", r"FROM profiles WHERE profiles\.id IN \(", "profiles", (PRIMARY_KEY,)),
    Hot("live runs of a batch's users",
        r"FROM journey_runs WHERE journey_runs\.profile_id IN \(.*\) AND journey_runs\.state IN \(",
        "journey_runs", (_index("ix_journey_runs_profile_id_journey_id_entered_at", "profile_id=?"),)),
    Hot("newest entries of a batch's users",
        r"max\(journey_runs\.entered_at\).* FROM journey_runs WHERE journey_runs\.profile_id IN \(",
        "journey_runs", (_index("ix_journey_runs_profile_id_journey_id_entered_at", "profile_id=?"),)),
    Hot("goal candidates of a batch's users",
        r"FROM journey_runs WHERE journey_runs\.profile_id IN \(.*\) AND journey_runs\.version_id IN \(",
        "journey_runs", (_index("ix_journey_runs_profile_id_journey_id_entered_at", "profile_id=?"),)),
    Hot("runs by id", r"FROM journey_runs WHERE journey_runs\.id IN \(", "journey_runs", (PRIMARY_KEY,)),
    Hot("trigger events by id", r"^SELECT events\.id, events\.properties FROM events WHERE events\.id IN \(",
        "events", (PRIMARY_KEY,)),
    Hot("history counts", r"FROM events WHERE events\.profile_id IN \(.*\) AND events\.name = ", "events",
        (_index("ix_events_profile_id_name_occurred_at", "profile_id=? AND name=?"),)),
    Hot("goals already credited", r"FROM conversions WHERE conversions\.run_id IN \(", "conversions",
        (_index("sqlite_autoindex_conversions_1", "run_id=?"),)),
    Hot("frequency caps: a batch's recent messages",
        r"FROM outbox WHERE outbox\.profile_id IN \(.*\) AND outbox\.channel IN \(", "outbox",
        (_index("ix_outbox_profile_id_channel_send_at", "profile_id=? AND channel=? AND send_at>?"),)),
    Hot("messages held for quiet hours",
        r"^SELECT outbox\.id, outbox\.run_id, outbox\.step_id, outbox\.profile_id FROM outbox "
        r"WHERE outbox\.profile_id IN \(", "outbox",
        (_index("ix_outbox_profile_id_channel_send_at", "profile_id=?"),)),
    Hot("a free coupon code", r"^UPDATE coupon_codes SET profile_id=\S+, run_id=", "coupon_codes",
        (PRIMARY_KEY, _index("ix_coupon_codes_pool_id_profile_id", "pool_id=? AND profile_id=?"),
         _index("sqlite_autoindex_coupon_codes_2", "claim_key=?"),
         # Not the holder index by pool_id alone: that walks every code of the pool for each claim
         # of someone who holds none (what `profile_id = ? OR holder_id = ?` in one EXISTS did).
         _index("uq_coupon_codes_pool_id_holder_id", "pool_id=? AND holder_id=?"))),
    Hot("profiles written back", r"^UPDATE profiles SET traits=", "profiles", (PRIMARY_KEY,)),
    Hot("runs written back", r"^UPDATE journey_runs SET .* WHERE journey_runs\.id = \S+ AND journey_runs\.row_version",
        "journey_runs", (PRIMARY_KEY,)),
    Hot("timers replaced", r"^DELETE FROM timers WHERE timers\.run_id IN \(", "timers",
        (_index("sqlite_autoindex_timers_1", "run_id=?"),)),
    Hot("new outbox rows", r"^INSERT INTO outbox \(.*ON CONFLICT \(idempotency_key\) DO NOTHING", "outbox",
        arbiter="uq_outbox_idempotency_key"),
    Hot("step counters upsert", r"^INSERT INTO step_counters \(.*ON CONFLICT \(version_id, step_id, metric, bucket\)",
        "step_counters", arbiter="pk_step_counters"),
    Hot("events marked processed", r"^UPDATE events SET processed_at=.+? WHERE events\.id IN \(", "events",
        (PRIMARY_KEY,)),
    # timers
    Hot("due timers", r"FROM timers JOIN journey_runs .* WHERE timers\.due_at <= ", "timers",
        (_index("ix_timers_due_at", "due_at<?"), PRIMARY_KEY)),
    # dispatch
    Hot("outbox due rows", r"^UPDATE outbox SET attempts=.* WHERE outbox\.id IN \(SELECT outbox\.id FROM outbox "
        r"WHERE outbox\.status IN \(", "outbox",
        (PRIMARY_KEY, _index("ix_outbox_status_send_at", "status=? AND send_at<?"))),
    Hot("claimed rows loaded", r"FROM outbox JOIN profiles ON profiles\.id = outbox\.profile_id", "outbox",
        (PRIMARY_KEY,)),
    Hot("a code redeemed, pool named",
        r"FROM coupon_codes JOIN coupon_pools ON coupon_pools\.id = coupon_codes\.pool_id WHERE coupon_codes\.code = ",
        "coupon_codes", (_index("sqlite_autoindex_coupon_codes_1", "pool_id=? AND code=?"),)),
    Hot("a code redeemed, no pool named", r"FROM coupon_codes WHERE coupon_codes\.code = ", "coupon_codes",
        (_index("sqlite_autoindex_coupon_codes_1", "pool_id=? AND code=?"),)),
]


@dataclass(frozen=True)
class Captured:
    sql: str  # whitespace collapsed, as the patterns read it
    raw: str  # as executed
    parameters: Any


def _workload_messages() -> list[Message]:
    """The examples' workload, then people who show up anonymously and are then recognised: a
    merge through a shared identity, an alias with previousId, redemptions by code."""
    messages = generate_messages(users=25, count=300, start=T0)
    at = messages[-1].timestamp

    def message(**raw: Any) -> Message:
        return parse_message({"timestamp": at.isoformat(), **raw}, at)

    return [*messages,
            message(type="track", event="product_viewed", anonymousId="a1", messageId="x1", properties={}),
            message(type="identify", userId="u3", anonymousId="a1", messageId="x2", traits={"phone": "+8613800000001"}),
            message(type="track", event="purchase", anonymousId="a2", messageId="x3", properties={"amount": 5}),
            message(type="alias", userId="u4", previousId="a2", messageId="x4"),
            message(type="identify", userId="u5", messageId="x5", traits={"phone": "+8613800000001"}),
            message(type="track", event="coupon_redeemed", userId="u6", messageId="x6",
                    properties={"code": "CART_5OFF-000001", "pool": "CART_5OFF"}),
            message(type="track", event="coupon_redeemed", userId="u7", messageId="x7",
                    properties={"code": "CART_5OFF-000002"})]


def _capture(db: Engine) -> list[Captured]:
    """Run the workload on `db` and return every statement it executed, first occurrence of
    each distinct SQL text, with the parameters of that occurrence (of a multi-row write, the
    first row's)."""
    clock = VirtualClock(T0)
    runtime = Runtime(db, clock)
    for path in sorted((ROOT / "examples/journeys").glob("*.journey")):
        runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
    pools = sorted({node.pool for program in runtime.programs.values() for node in program.journey.nodes.values()
                    if isinstance(node, CouponNode)})
    with db.begin() as conn:
        for pool in pools:
            coupons.create_pool(conn, pool, T0)
            coupons.generate(conn, pool, f"{pool}-######", 40)
    seen: dict[str, Captured] = {}

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement not in seen:
            first = parameters[0] if executemany and parameters else parameters
            seen[statement] = Captured(" ".join(statement.split()), statement, first)

    event.listen(db, "before_cursor_execute", record)
    try:
        messages = _workload_messages()
        for start in range(0, len(messages), 100):
            chunk = messages[start:start + 100]
            clock.move_to(chunk[-1].timestamp)
            runtime.accept(chunk)
            while runtime.process_events(100):
                pass
        clock.move_to(clock.now() + timedelta(days=30))
        while runtime.fire_due_timers(100):
            pass
        dispatch_store.claim(db, clock.now(), 50, timedelta(seconds=30), {"webhook"})
    finally:
        event.remove(db, "before_cursor_execute", record)
        runtime.close()
    return list(seen.values())


_CAPTURED: dict[str, list[Captured]] = {}


@pytest.fixture
def captured(db: Engine) -> list[Captured]:
    """The workload's statements on this backend. The SQL depends on the dialect, not on the
    rows, so it is captured once per backend; each test explains it on its own fresh database."""
    if db.dialect.name not in _CAPTURED:
        _CAPTURED[db.dialect.name] = _capture(db)
    return _CAPTURED[db.dialect.name]


def explain(conn: Connection, sql: str, parameters: Any) -> list[str]:
    """The plan of `sql` with these parameters, one line per node, through the DBAPI cursor
    (the SQL is already the driver's). Nothing is executed: neither EXPLAIN runs the statement."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
            return [str(row[3]) for row in cursor.fetchall()]
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", parameters)
        return [str(row[0]) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _table(name: str) -> str:
    return ALIASES.get(name, name)


def sqlite_problems(plan: Sequence[str], allowed: Mapping[str, Sequence[str]]) -> list[str]:
    """What is wrong with a SQLite plan: a SCAN of a big table, or a SEARCH of one that is not
    among the ways `allowed` gives for that table (any SEARCH of a table not named there)."""
    problems = []
    for line in plan:
        found = re.match(r"(SCAN|SEARCH) (\w+)(.*)$", line)
        if found is None or _table(found[2]) not in BIG_TABLES:
            continue
        ways = allowed.get(_table(found[2]))
        if ways is not None:
            if not any(re.search(way, line) for way in ways):
                problems.append(line)
        elif found[1] == "SCAN":
            problems.append(line)
    return problems


def pg_problems(plan: Sequence[str], table: str, arbiter: str | None) -> list[str]:
    """What is wrong with a PostgreSQL plan (enable_seqscan off): a sequential scan of a big
    table, no index reaching `table` (for a read, an update or a delete), or an upsert without
    the arbiter index."""
    problems = [line.strip() for line in plan
                if (m := re.search(r"Seq Scan on (\w+)", line)) and _table(m[1]) in BIG_TABLES]
    if arbiter is not None:
        if not any(f"Conflict Arbiter Indexes: {arbiter}" in line for line in plan):
            problems.append(f"no conflict arbiter {arbiter}")
    elif not any(re.search(rf"(Index Scan|Index Only Scan) using \w+ on {table}\b|Bitmap Heap Scan on {table}\b",
                           line) for line in plan):
        problems.append(f"no index reaches {table}")
    return problems


def matching(captured: Sequence[Captured], pattern: str) -> list[Captured]:
    return [c for c in captured if re.search(pattern, c.sql)]


@pytest.mark.parametrize("hot", HOT, ids=[h.name for h in HOT])
def test_each_hot_query_uses_an_index(db: Engine, captured: list[Captured], hot: Hot,
                                      request: pytest.FixtureRequest) -> None:
    found = matching(captured, hot.pattern)
    assert found, f"the workload never ran {hot.name!r}: the pattern or the workload is out of date"
    if hot.known_bad and db.dialect.name == "sqlite":
        request.applymarker(pytest.mark.xfail(strict=True, reason=hot.known_bad))
    failures = []
    with db.begin() as conn:
        for statement in found:
            plan = explain(conn, statement.raw, statement.parameters)
            if db.dialect.name == "sqlite":
                problems = sqlite_problems(plan, {hot.table: hot.sqlite} if hot.arbiter is None else {})
            else:
                problems = pg_problems(plan, hot.table, hot.arbiter)
            if problems:
                failures.append(f"{statement.sql[:300]}\n  " + "\n  ".join(problems) + "\n  plan: " + " | ".join(plan))
    assert not failures, "\n".join(failures)


def test_no_statement_of_the_workload_scans_a_big_table(db: Engine, captured: list[Captured]) -> None:
    """Beyond the named hot queries, nothing the intake, apply, timer and dispatch paths ran
    scans a table that grows with traffic: a query added later is held to the same rule. The
    known bad plans (strict xfails above) are left out so that this test says something today."""
    known_bad = [h.pattern for h in HOT if h.known_bad]
    failures = []
    with db.begin() as conn:
        for statement in captured:
            if not re.match(r"(SELECT|UPDATE|DELETE|INSERT|WITH)\b", statement.sql):
                continue
            if db.dialect.name == "sqlite" and any(re.search(p, statement.sql) for p in known_bad):
                continue
            plan = explain(conn, statement.raw, statement.parameters)
            if db.dialect.name == "sqlite":
                problems = sqlite_problems(plan, {"events": (r"^SCAN events USING INDEX ix_events_unprocessed$",
                                                             r"^SEARCH ")})
            else:
                problems = [line.strip() for line in plan
                            if (m := re.search(r"Seq Scan on (\w+)", line)) and _table(m[1]) in BIG_TABLES]
            if problems:
                failures.append(f"{statement.sql[:300]}\n  " + "\n  ".join(problems))
    assert not failures, "\n".join(failures)


def test_the_identity_lookup_of_intake_is_the_one_explained(db: Engine) -> None:
    """`owners_of` is what the intake's prefetch runs; its statement is explained above. The
    row-value form it replaced, `(kind, value) IN (VALUES ...)`, is what the rule exists for:
    SQLite scans every identity for it, and the same check says so."""
    pairs = [("user_id", "u1"), ("user_id", "u2"), ("phone", "+8613800000000")]
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(db, "before_cursor_execute", record)
    try:
        with db.connect() as conn:
            assert owners_of(conn, pairs) == {}
    finally:
        event.remove(db, "before_cursor_execute", record)
    lookups = [s for s in statements if "FROM identities" in s]
    assert len(lookups) == 2  # one per kind
    assert all(re.search(HOT[1].pattern, s) for s in lookups)
    if db.dialect.name != "sqlite":
        return
    old = select(identities.c.profile_id).where(tuple_(identities.c.kind, identities.c.value).in_(pairs))
    with db.connect() as conn:
        compiled = old.compile(conn, compile_kwargs={"render_postcompile": True})
        plan = explain(conn, str(compiled), tuple(compiled.params[k] for k in compiled.positiontup or ()))
    assert sqlite_problems(plan, {}) == [line for line in plan if line.startswith("SCAN identities")] != []
