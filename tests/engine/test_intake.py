"""Storing a batch of messages: the One-ID rules hold inside one batch exactly as across
batches, though most messages resolve without a query of their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from engine import intake
from engine.clock import VirtualClock
from engine.messages import Message, parse_message
from engine.runtime import Runtime
from storage import writer
from storage.tables import events, identities, profiles

T0 = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def message(**raw: Any) -> Any:
    return parse_message({"timestamp": T0.isoformat(), **raw}, T0)


def state(db: Engine) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[int, int | None]]:
    with db.connect() as conn:
        owners = {(r.kind, r.value): r.profile_id for r in conn.execute(select(identities))}
        located = {r.message_id: r.profile_id for r in conn.execute(select(events))}
        merged = {r.id: r.merged_into for r in conn.execute(select(profiles))}
    return owners, located, merged


def test_a_new_person_seen_twice_in_one_batch_is_one_profile(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    assert runtime.accept([
        message(type="track", event="view", anonymousId="a1", messageId="m1"),
        message(type="track", event="view", anonymousId="a1", messageId="m2"),
        message(type="identify", anonymousId="a1", userId="u1", messageId="m3", traits={"phone": "+8613800000000"}),
        message(type="track", event="view", userId="u1", messageId="m4"),
    ]) == 4
    owners, located, merged = state(db)
    assert set(owners) == {("anonymous_id", "a1"), ("user_id", "u1"), ("phone", "+8613800000000")}
    assert len(set(owners.values())) == 1
    assert set(located.values()) == set(owners.values())
    assert list(merged.values()) == [None]


def test_an_alias_merges_two_people_created_in_the_same_batch(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    runtime.accept([
        message(type="track", event="view", anonymousId="a1", messageId="m1"),
        message(type="track", event="view", userId="u1", messageId="m2"),
        message(type="alias", userId="u1", previousId="a1", messageId="m3"),
        message(type="track", event="view", anonymousId="a1", messageId="m4"),
    ])
    owners, located, merged = state(db)
    survivor = owners[("user_id", "u1")]
    assert owners[("anonymous_id", "a1")] == survivor
    assert set(located.values()) == {survivor}  # the events stored before the merge moved with it
    assert sorted(merged.values(), key=str) == [survivor, None]


def test_a_shared_device_never_fuses_two_customers_in_one_batch(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    runtime.accept([
        message(type="identify", userId="u1", anonymousId="tablet", messageId="m1", traits={}),
        message(type="identify", userId="u2", anonymousId="tablet", messageId="m2", traits={}),
        message(type="track", event="view", userId="u2", messageId="m3"),
    ])
    owners, located, _ = state(db)
    assert owners[("user_id", "u1")] != owners[("user_id", "u2")]
    assert located == {"m1": owners[("user_id", "u1")], "m2": owners[("user_id", "u2")],
                       "m3": owners[("user_id", "u2")]}


def test_duplicates_within_and_across_batches_are_stored_once(db: Engine) -> None:
    runtime = Runtime(db, VirtualClock(T0))
    first = message(type="track", event="view", userId="u1", messageId="same")
    assert runtime.accept([first, first]) == 1
    assert runtime.accept([first, message(type="track", event="view", userId="u1", messageId="other")]) == 1
    assert sorted(state(db)[1]) == ["other", "same"]


def test_the_accepted_hook_hears_whose_events_were_committed(db: Engine) -> None:
    """`on_accepted` is how a worker gets woken when its partition has work: it must come after
    the commit (a worker woken earlier would find nothing) and name every new event's profile,
    and a batch of duplicates, which gives no worker anything to do, must not wake one."""
    runtime = Runtime(db, VirtualClock(T0))
    heard: list[tuple[frozenset[int], set[int]]] = []

    def hear(profile_ids: frozenset[int]) -> None:
        heard.append((profile_ids, set(state(db)[1].values())))  # what another connection sees now

    runtime.on_accepted = hear
    batch = [message(type="track", event="view", userId=user, messageId=f"m-{user}") for user in ("u1", "u2", "u1")]
    assert runtime.accept(batch) == 2
    [(profile_ids, committed)] = heard
    assert profile_ids == committed == set(state(db)[1].values())
    assert len(profile_ids) == 2
    assert runtime.accept(batch) == 0
    assert len(heard) == 1


SHANGHAI = timezone(timedelta(hours=8))


def _raw_rows(conn: Connection, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    """Rows as the database keeps them: JSON as its stored text, times as SQLite's text (on
    PostgreSQL, the instants themselves; their text depends on the session's zone)."""
    if conn.dialect.name == "postgresql":
        columns = columns.replace("properties", "properties::text").replace("traits", "traits::text").replace(
            "tags", "tags::text")
    return [tuple(row) for row in conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY {order}")]


def test_stored_values_are_what_sqlalchemy_writes(db: Engine) -> None:
    """The intake writes through the driver; every value must be byte for byte what the
    column types wrote through SQLAlchemy: JSON through `json.dumps` (non-ASCII escaped, nested
    values as they are), instants in UTC (on SQLite, fixed-width text that sorts as time does),
    whatever offset they came with."""
    now = datetime(2026, 6, 1, 12, 30, 0, 123456, tzinfo=SHANGHAI)
    properties = {"名称": "隐形眼镜", "quote": 'a "b" \\ c\u2028', "nested": {"list": [1, 2.5, None, True, "é"],
                                                                     "深": {"层": []}}}
    sent = [
        Message(type="track", message_id="e1", timestamp=datetime(2026, 5, 31, 23, 59, 59, tzinfo=SHANGHAI),
                user_id="用户1", event="购买", properties=properties),
        Message(type="identify", message_id="e2", timestamp=datetime(2026, 6, 1, 8, 0, 0, 5, tzinfo=UTC),
                user_id="用户1", traits={"name": "王小明", "tags": ["会员"]}),
        Message(type="group", message_id="e3", timestamp=datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=SHANGHAI),
                anonymous_id="匿名", group_id="组", traits={"行业": "零售"}),
    ]
    with writer(db).begin() as conn:
        assert intake.store(conn, sent, now).new == 3
    owner = state(db)[0]
    expected = [(m.message_id, owner[m.identities()[0]], m.type, m.event, intake._stored_properties(m), m.timestamp)
                for m in sent]
    with db.begin() as conn:  # the same rows through SQLAlchemy, beside them
        conn.execute(insert(profiles), [{"id": -1 - i, "traits": {}, "tags": [], "first_identity": "ref",
                                         "created_at": now, "updated_at": now} for i in range(2)])
        conn.execute(insert(events), [{"message_id": f"ref-{m}", "profile_id": p, "type": t, "name": n,
                                       "properties": props, "occurred_at": at, "received_at": now}
                                      for m, p, t, n, props, at in expected])
    with db.connect() as conn:
        stored = _raw_rows(conn, "events", "message_id, profile_id, type, name, properties, occurred_at, received_at",
                           "message_id")
        written = {row[0]: row[1:] for row in stored}
        assert len(written) == 6
        for message_id, *_ in expected:
            assert written[message_id] == written[f"ref-{message_id}"]
        people = _raw_rows(conn, "profiles", "id, traits, tags, first_identity, created_at, updated_at", "id")
        reference = {row[1:3] + row[4:] for row in people if row[3] == "ref"}
        assert len(reference) == 1 and {row[1:3] + row[4:] for row in people} == reference
        assert {row[3] for row in people} == {"user_id:用户1", "anonymous_id:匿名", "ref"}
        read = {r.message_id: r for r in conn.execute(select(events))}
    for message_id, profile_id, type_, name, props, at in expected:
        row = read[message_id]
        assert (row.profile_id, row.type, row.name, row.properties) == (profile_id, type_, name, props)
        assert row.occurred_at == at and row.occurred_at.utcoffset() == timedelta(0)
        assert row.received_at == now
    assert read["e3"].occurred_at == datetime(999, 1, 1, 19, 4, 5, 6, tzinfo=UTC)


def test_a_profile_one_id_creates_does_not_take_the_id_of_a_later_new_person(db: Engine) -> None:
    """New people take ids from a block before they are written; a profile that `identity.resolve`
    creates (an alias of unknowns, a shared device's second customer) takes its id from the
    table. On SQLite that is the block's next id, and the next new person of the batch must not
    be given it again."""
    runtime = Runtime(db, VirtualClock(T0))
    assert runtime.accept([
        message(type="track", event="view", userId="u1", anonymousId="tablet", messageId="m1"),
        message(type="alias", userId="u2", previousId="a9", messageId="m2"),  # One-ID creates u2
        message(type="track", event="view", userId="u3", messageId="m3"),
        message(type="identify", userId="u4", anonymousId="tablet", messageId="m4", traits={}),  # and u4
        message(type="track", event="view", userId="u5", messageId="m5"),
    ]) == 5
    owners, located, _ = state(db)
    people = {user: owners[("user_id", user)] for user in ("u1", "u2", "u3", "u4", "u5")}
    assert len(set(people.values())) == 5
    assert owners[("anonymous_id", "a9")] == people["u2"]
    assert located == {f"m{i}": people[f"u{i}"] for i in range(1, 6)}


def test_a_batch_bigger_than_a_lookup_chunk(db: Engine) -> None:
    """More message ids and identities than one `IN (...)` list takes on SQLite (`CHUNK`), and
    more new people than several blocks of ids: known and new people, and duplicates of stored
    messages, all sorted out as in a small batch."""
    runtime = Runtime(db, VirtualClock(T0))
    first = [message(type="track", event="view", userId=f"u{i}", messageId=f"m{i}") for i in range(0, 1400, 2)]
    assert runtime.accept(first) == 700
    second = [message(type="track", event="view", userId=f"u{i}", messageId=f"m{i}",
                      **({"anonymousId": f"a{i}"} if i % 2 else {})) for i in range(1400)]
    second += [message(type="track", event="view", messageId=f"n{i}",
                       **({"anonymousId": f"a{i}"} if i % 2 else {"userId": f"u{i}"})) for i in range(1400)]
    assert runtime.accept(second) == 700 + 1400
    owners, located, merged = state(db)
    assert len(merged) == 1400
    assert all(located[f"m{i}"] == located[f"n{i}"] == owners[("user_id", f"u{i}")] for i in range(1400))
    assert all(owners[("anonymous_id", f"a{i}")] == owners[("user_id", f"u{i}")] for i in range(1, 1400, 2))
