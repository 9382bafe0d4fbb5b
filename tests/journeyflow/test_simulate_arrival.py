"""When things happen in a simulation: events arriving at the same instant as a timer are
applied first, as the live engine applies them (docs/engine.md, "Moving"), and a late event
(Segment's `receivedAt` after its `timestamp`) arrives late: it never satisfies a wait that
began after it happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.messages import Message
from journeyflow.simulate import SimulationInputError, read_events, received, simulate

T0 = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

DEADLINE = """journey "Deadline"
  trigger event "signup"

  @bought wait for event "purchase" up to 1h:
    received:
      @thanks send sms "thanks"
    timeout:
      @nudge send sms "nudge"
"""

EXIT_AT_THE_TIMER = """journey "Exit at the timer"
  trigger event "signup"
  exit on event "purchase"

  @pause wait 1h
  @hello send sms "hello"
"""

CONFIRM = """journey "Confirm"
  trigger event "purchase"
  entry always

  @confirm send sms "order {{ event.order_id }}"
"""


def track(user: str, event: str, at: datetime, message_id: str, **properties: Any) -> Message:
    return Message("track", message_id, at, user_id=user, event=event, properties=properties)


def sent(lines: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(user, step, at) of every action line."""
    return [(str(line["user_id"]), str(line["step"]), str(line["at"])) for line in lines if "trace" not in line]


# --------------------------------------------------------------------------- the same instant


def test_an_event_at_exactly_the_deadline_counts_as_received() -> None:
    """Before: the timeout fired first (timers due <= T, then the event at T); the live engine
    applies the events of an instant before its timers, so the purchase wins."""
    lines = simulate([DEADLINE], [track("u", "signup", T0, "m1"), track("u", "purchase", T0 + HOUR, "m2")])
    assert sent(lines) == [("u", "thanks", (T0 + HOUR).isoformat())]


def test_a_second_after_the_deadline_is_too_late() -> None:
    lines = simulate([DEADLINE], [track("u", "signup", T0, "m1"),
                                  track("u", "purchase", T0 + HOUR + timedelta(seconds=1), "m2")])
    assert sent(lines) == [("u", "nudge", (T0 + HOUR).isoformat())]


def test_an_exit_at_the_instant_a_wait_ends_wins_over_the_timer() -> None:
    lines = simulate([EXIT_AT_THE_TIMER], [track("u", "signup", T0, "m1"), track("u", "purchase", T0 + HOUR, "m2")],
                     trace=True)
    assert sent(lines) == []
    assert [line["trace"] for line in lines][-1] == "exited"


# --------------------------------------------------------------------------- late events


def test_a_late_event_that_happened_before_the_wait_began_does_not_satisfy_it() -> None:
    """It is applied when it arrives (it confirms the order then) but is late for the wait."""
    late = received(track("u", "purchase", T0 - timedelta(minutes=10), "m2", order_id="o-1"),
                    T0 + timedelta(minutes=30))
    lines = simulate([DEADLINE, CONFIRM], [track("u", "signup", T0, "m1"), late])
    assert sent(lines) == [("u", "confirm", (T0 + timedelta(minutes=30)).isoformat()),
                           ("u", "nudge", (T0 + HOUR).isoformat())]


def test_a_late_event_that_happened_during_the_wait_satisfies_it_when_it_arrives() -> None:
    late = received(track("u", "purchase", T0 + timedelta(minutes=10), "m2"), T0 + timedelta(minutes=30))
    lines = simulate([DEADLINE], [track("u", "signup", T0, "m1"), late])
    assert sent(lines) == [("u", "thanks", (T0 + timedelta(minutes=30)).isoformat())]


def test_an_event_arriving_after_the_deadline_is_too_late_even_if_it_happened_in_time() -> None:
    late = received(track("u", "purchase", T0 + timedelta(minutes=10), "m2"), T0 + 2 * HOUR)
    lines = simulate([DEADLINE], [track("u", "signup", T0, "m1"), late])
    assert sent(lines) == [("u", "nudge", (T0 + HOUR).isoformat())]


def events_file(tmp_path: Path, *lines: dict[str, Any]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def purchase(user: str, timestamp: str, received_at: str | None = None) -> dict[str, Any]:
    line = {"type": "track", "event": "purchase", "userId": user, "messageId": f"{user}-1", "timestamp": timestamp,
            "properties": {"order_id": f"o-{user}"}}
    return line if received_at is None else {**line, "receivedAt": received_at}


def test_messages_are_applied_and_reported_in_arrival_order(tmp_path: Path) -> None:
    """`a` bought first but its purchase arrived two hours late: `b`'s confirmation goes first,
    and `a`'s goes when its purchase arrives, not when it happened."""
    path = events_file(tmp_path, purchase("a", "2026-06-01T10:00:00Z", "2026-06-01T12:00:00Z"),
                       purchase("b", "2026-06-01T11:00:00Z"))
    messages = read_events(path)
    assert [m.user_id for m in messages] == ["b", "a"]
    assert messages[1].timestamp == datetime(2026, 6, 1, 10, tzinfo=UTC)  # still when it happened
    assert sent(simulate([CONFIRM], messages)) == [("b", "confirm", "2026-06-01T11:00:00+00:00"),
                                                   ("a", "confirm", "2026-06-01T12:00:00+00:00")]


def test_a_message_with_only_received_at_happened_when_it_arrived(tmp_path: Path) -> None:
    line = purchase("a", "")
    del line["timestamp"]
    (message,) = read_events(events_file(tmp_path, {**line, "receivedAt": "2026-06-01T12:00:00+08:00"}))
    assert message.timestamp == datetime(2026, 6, 1, 4, tzinfo=UTC)


@pytest.mark.parametrize(("value", "why"), [("yesterday", "must be an ISO-8601 timestamp"),
                                            (17, "must be an ISO-8601 timestamp"),
                                            ("3020-01-01T00:00:00Z", "must be between 1900 and 2999")])
def test_a_received_at_that_is_not_a_time_is_reported_by_line_and_field(tmp_path: Path, value: Any,
                                                                        why: str) -> None:
    path = events_file(tmp_path, purchase("a", "2026-06-01T10:00:00Z"),
                       {**purchase("b", "2026-06-01T10:00:00Z"), "receivedAt": value, "event": None})
    with pytest.raises(SimulationInputError) as caught:
        read_events(path)
    assert caught.value.problems == [f"{path}:2: event: is required", f"{path}:2: receivedAt: {why}"]
