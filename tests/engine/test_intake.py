"""Storing a batch of messages: the One-ID rules hold inside one batch exactly as across
batches, though most messages resolve without a query of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime
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
