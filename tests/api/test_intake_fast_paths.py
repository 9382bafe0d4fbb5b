"""The intake's shortcuts answer exactly what the slow paths they skip would (issue 18).

- `bodies._may_nest_deeper` decides, from the bytes, whether a body must be walked for nesting:
  it must never say no to a body nested past MAX_DEPTH, whatever its strings hold (a string
  holding `][` or escaped quotes must not pass for structure).
- A batch of ordinary messages, which holds hundreds of brackets, is no longer walked, and a
  deep or unstorable message in a large batch is still refused alone, naming its field.
- The group commit gathers requests that arrive within a few event-loop turns into one group.
- The startup heap is frozen once per process.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api import bodies
from api.bodies import MAX_DEPTH, _may_nest_deeper
from api.heap import freeze_startup_heap
from api.ingest_queue import IngestQueue
from engine.messages import Message

from .conftest import Server
from .test_ingest_queue import message


def height(value: Any) -> int:
    """Levels of objects and arrays, the reference `_may_nest_deeper` is checked against."""
    if isinstance(value, dict):
        return 1 + max((height(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((height(v) for v in value), default=0)
    return 0


# Strings full of what could fool a scan of the bytes: brackets, quotes, backslashes, escapes.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\a/é\u2028')), max_size=8)
leaves = st.one_of(tricky_text, st.integers(), st.none(), st.booleans(), st.floats(allow_nan=False,
                                                                                  allow_infinity=False))
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(tricky_text, inner, max_size=3)),
                           max_leaves=40)


def wrapped(value: Any, levels: int, keys: Sequence[str]) -> Any:
    for i in range(levels):
        value = [value] if i % 3 == 0 else {keys[i % len(keys)]: value, "][": "}{"}
    return value


@settings(max_examples=400, deadline=None)
@given(value=json_values, levels=st.integers(min_value=0, max_value=MAX_DEPTH + 6),
       keys=st.lists(tricky_text, min_size=1, max_size=3), ascii_only=st.booleans())
def test_the_depth_sign_is_exact_whatever_the_strings_hold(value: Any, levels: int, keys: list[str],
                                                          ascii_only: bool) -> None:
    document = wrapped(value, levels, keys)
    body = json.dumps(document, ensure_ascii=ascii_only).encode()
    assert _may_nest_deeper(body) == (height(document) > MAX_DEPTH)


def test_strings_that_close_and_reopen_brackets_do_not_hide_depth() -> None:
    """Each `"]["` string, read as structure, would close a level and open one: a scan that
    kept the brackets inside strings would measure this body as two levels deep."""
    value: Any = 1
    for _ in range(MAX_DEPTH + 1):
        value = ["][", value]
    deep = json.dumps(value).encode()
    assert deep.startswith(b'["][", ["][", ') and height(value) == MAX_DEPTH + 1
    assert _may_nest_deeper(deep)
    assert bodies.parse(deep).suspect


def test_an_ordinary_batch_is_not_walked() -> None:
    track = {"type": "track", "userId": "u1", "event": "viewed", "messageId": "m",
             "properties": {"sku": "s1", "tags": ["a", "b"], "price": 129.5, "note": "a [b] {c}"}}
    body = json.dumps({"batch": [track] * 100}).encode()
    assert body.count(b"[") + body.count(b"{") > MAX_DEPTH  # what used to send it through the walk
    assert not bodies.parse(body).suspect


def test_a_deep_message_in_a_large_batch_is_refused_alone(server: Server) -> None:
    good = {"type": "track", "userId": "u", "event": "kept", "properties": {"list": [1, [2]]}}
    deep = {"type": "track", "userId": "u", "event": "deep", "messageId": "deep",
            "properties": {"d": wrapped(1, MAX_DEPTH + 1, ["k"]), "s": '"]["'}}
    items = [{**good, "messageId": f"good-{i}"} for i in range(60)]
    items.insert(30, deep)
    with server.client(server.write) as client:
        response = client.post("/v1/batch", content=json.dumps({"batch": items}).encode())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 60
    [rejected] = answer["rejected"]
    assert rejected["index"] == 30
    assert rejected["errors"][0]["field"].startswith("batch[30].properties.d")
    assert "levels" in rejected["errors"][0]["detail"]


def test_requests_arriving_within_a_few_turns_share_one_group() -> None:
    """Submitted one event-loop turn apart (as requests read from ready sockets are), they
    are committed together rather than the first alone."""
    groups: list[list[str]] = []

    def commit(messages: Sequence[Message]) -> int:
        groups.append([m.message_id for m in messages])
        return len(messages)

    async def scenario() -> list[int]:
        queue = IngestQueue(commit, max_messages=100)
        queue.start()
        submitted = []
        for i in range(4):
            submitted.append(asyncio.ensure_future(queue.submit([message(i)])))
            await asyncio.sleep(0)
        results = await asyncio.gather(*submitted)
        await queue.stop()
        return results

    assert asyncio.run(scenario()) == [1, 1, 1, 1]
    assert groups == [["m0", "m1", "m2", "m3"]]


def test_the_startup_heap_is_frozen_once() -> None:
    freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    kept = [[i] for i in range(1000)]  # made after the freeze: the collector still sees them
    freeze_startup_heap()
    assert gc.get_freeze_count() == frozen
    assert kept
