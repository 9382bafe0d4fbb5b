"""`journeyflow simulate`: the real engine, a virtual clock, and output fit for diffing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from actions.settings import SETTINGS_FILE_ENV, load_settings
from actions.templates import render
from journeyflow.cli import main

ROOT = Path(__file__).parents[2]
LENS = ROOT / "examples/journeys/lens_care_buyers_to_lenses.journey"
EVENTS = ROOT / "examples/events/lens_care_buyers.jsonl"


def simulate(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["simulate", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def test_the_lens_journey_over_two_users() -> None:
    code, lines, _ = simulate(str(LENS), "--events", str(EVENTS))
    assert code == 0
    actions = [(line["user_id"], line["step"], line["at"]) for line in lines]
    assert actions == [
        ("u-100", "intro", "2026-06-03T04:00:00+00:00"),
        ("u-100", "first_order_coupon", "2026-06-03T12:30:00+00:00"),  # viewed lenses: coupon...
        ("u-100", "coupon_push", "2026-06-03T12:30:00+00:00"),  # ...and its code in the push
        ("u-200", "intro", "2026-06-04T01:00:00+00:00"),  # 22:00 in Shanghai: deferred to 09:00
        ("u-200", "intro_reminder", "2026-06-09T01:00:00+00:00"),  # never looked: timeout branch
    ]
    coupon = lines[1]["coupon_code"]
    assert isinstance(coupon, str) and coupon in str(lines[2]["content"])
    assert str(lines[2]["content"]).startswith("小林，")


def test_trace_adds_transitions_in_time_order() -> None:
    _, lines, _ = simulate(str(LENS), "--events", str(EVENTS), "--trace")
    traces = [line for line in lines if "trace" in line]
    assert {"entered", "moved", "waiting", "deferred", "completed"} <= {t["trace"] for t in traces}
    times = [line["at"] for line in lines]
    assert times == sorted(times)


def test_same_input_same_output_byte_for_byte() -> None:
    """Two separate processes, as a marketer would run it twice."""
    script = shutil.which("journeyflow", path=str(Path(sys.executable).parent))
    assert script
    command = [script, "simulate", *map(str, sorted((ROOT / "examples/journeys").glob("*.journey"))),
               "--events", str(EVENTS), "--trace", "--until", "2026-07-01"]
    first = subprocess.run(command, capture_output=True, check=True).stdout
    second = subprocess.run(command, capture_output=True, check=True).stdout
    assert first == second
    assert len(first.splitlines()) > 20


def test_until_stops_the_clock() -> None:
    _, lines, _ = simulate(str(LENS), "--events", str(EVENTS), "--until", "2026-06-05")
    assert [line["step"] for line in lines if line["user_id"] == "u-200"] == ["intro"]


def test_bad_event_lines_are_reported_by_line_and_field(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "track", "userId": "u", "timestamp": "2026-01-01T00:00:00Z"}\n'
                      "not json\n"
                      '{"type": "track", "event": "x", "userId": "u"}\n', encoding="utf-8")
    code, lines, err = simulate(str(LENS), "--events", str(events))
    assert code == 1 and lines == []
    assert f"{events}:1: event: is required" in err
    assert f"{events}:2: not JSON" in err
    assert f"{events}:3: timestamp: is required in a simulation" in err


def test_an_invalid_journey_is_reported_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.journey"
    bad.write_text('journey "x"\n  trigger event "a"\n\n  wait 2\n', encoding="utf-8")
    code, _, err = simulate(str(bad), "--events", str(EVENTS))
    assert code == 1
    assert f"{bad}:4:8:" in err


# --------------------------------------------------------------------------- messages as sent

ACTIONS = ROOT / "examples/actions.toml"
CATALOG = ROOT / "examples/journeys/catalog.toml"
CONFIRMATION = ROOT / "examples/journeys/order_confirmation.journey"


def test_a_template_send_is_rendered_and_addressed_as_the_dispatcher_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTINGS_FILE_ENV, raising=False)
    code, lines, _ = simulate(str(LENS), "--events", str(EVENTS), "--actions-settings", str(ACTIONS))
    assert code == 0
    intro = lines[0]
    assert (intro["step"], intro["template"], intro["to"]) == ("intro", "lens_intro", "tok-100")
    assert intro["title"] == "认识一下清瞳隐形眼镜"
    assert str(intro["content"]).startswith("小林，用着清瞳护理液")  # user.first_name, rendered


def test_without_its_text_a_template_send_says_what_the_dispatcher_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SETTINGS_FILE_ENV, raising=False)
    _, lines, _ = simulate(str(LENS), "--events", str(EVENTS))
    intro = lines[0]
    assert intro["template"] == "lens_intro" and intro["content"] is None
    assert "unknown template 'lens_intro': define [templates.lens_intro]" in str(intro["error"])
    assert "--actions-settings" in str(intro["error"])


def test_a_message_nobody_can_receive_shows_the_reason_it_would_fail(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(m) for m in [
        {"type": "identify", "userId": "with", "timestamp": "2026-06-01T15:00:00Z",
         "traits": {"phone": "+8613800000001"}},
        {"type": "track", "userId": "with", "event": "purchase", "timestamp": "2026-06-01T15:00:01Z",
         "properties": {"order_id": "o-1", "amount": 58}},
        {"type": "track", "userId": "without", "event": "purchase", "timestamp": "2026-06-01T15:00:02Z",
         "properties": {"order_id": "o-2", "amount": 9}},
    ]) + "\n", encoding="utf-8")
    _, lines, _ = simulate(str(CONFIRMATION), "--events", str(events), "--actions-settings", str(ACTIONS))
    sent, failed = lines
    assert (sent["to"], sent["at"]) == ("+8613800000001", "2026-06-01T15:00:01+00:00")  # 23:00 in Shanghai: at once
    assert "o-1" in str(sent["content"]) and "error" not in sent
    assert failed["user_id"] == "without" and failed["content"] is None
    assert "has no phone" in str(failed["error"])


def test_the_example_templates_are_the_catalogs_and_each_renders() -> None:
    """examples/actions.toml gives a text to exactly the templates the journeys may name."""
    templates = load_settings(ACTIONS, {}).templates
    assert sorted(templates) == sorted(tomllib.loads(CATALOG.read_text(encoding="utf-8"))["templates"])
    user = {"first_name": "小林", "referral_count": 3, "tags": []}
    for name, template in templates.items():
        for text in filter(None, (template.text, template.title)):
            rendered = render(text, user, {"product_name": "月抛"}, {"gift": {"code": "G-1"}, "promo": {"code": "P-1"}})
            assert rendered.strip() and "{{" not in rendered, name
