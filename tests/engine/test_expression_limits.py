"""Integer arithmetic in conditions is bounded: a result past MAX_INT_BITS is None, like any
other overflow, instead of a number whose computing stalls every event that meets it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import dsl
from engine.expressions import MAX_INT_BITS, compile_expr
from engine.scope import NoHistory, Scope

BIG = 2 ** (MAX_INT_BITS - 9)  # 4088 bits: inside the bound
USER: dict[str, Any] = {"big": BIG, "small": 255, "n": 9}


def evaluate(text: str, user: dict[str, Any] = USER) -> Any:
    journey = dsl.parse(f'journey "t"\n  trigger api\n  audience {text}\n\n  pass\n')
    assert journey.audience is not None
    return compile_expr(journey.audience.condition)(Scope(user, datetime(2025, 1, 1, tzinfo=UTC), None, {},
                                                          NoHistory()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user.big * user.small", BIG * 255),  # 4088 + 8 bits: just inside
        ("user.big * user.big", None),
        ("user.big * user.big * user.big", None),
        ("user.big * 512", None),  # 4088 + 10 bits
        ("user.big + user.big", BIG * 2),
        ("user.big * 256 + 1", None),  # 4088 + 9 bits: None, and None + 1 is None
        ("user.big / user.big", 1.0),
        ("user.n * user.n * 2", 162),
    ],
)
def test_integer_results_are_bounded(text: str, expected: Any) -> None:
    assert evaluate(text) == expected


def test_integers_past_the_bound_give_none_in_any_operation() -> None:
    huge = {"huge": 2 ** (MAX_INT_BITS + 1)}
    assert [evaluate(text, huge) for text in ("user.huge / user.huge", "user.huge + 1", "user.huge * 1")] == [
        None, None, None]
