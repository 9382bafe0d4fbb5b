"""Saved simulation scenarios on both backends: saved under a name per journey (saving again
overwrites), listed by name, the accepted outcome replaced, deleted; never across journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine

from storage import journeys, scenarios

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
INPUT = {"user_id": "u-1", "start": "2026-06-01 22:00", "events": "+0m purchase category=lens\n"}
OUTCOME = {"lines": ["path:", "  2026-06-01 22:00 entered the journey"]}


def journey(conn: Connection, slug: str) -> int:
    created = journeys.create(conn, slug, slug, f'journey "{slug}"\n  trigger event "e"\n\n  pass\n', {}, NOW)
    assert created is not None
    return created.journey_id


def test_saved_listed_by_name_and_overwritten_by_name(db: Engine) -> None:
    with db.begin() as conn:
        lens = journey(conn, "lens")
        first = scenarios.save(conn, lens, "zeta", INPUT, OUTCOME, "user:marketer", NOW)
        scenarios.save(conn, lens, "alpha", INPUT, None, None, NOW)
    assert (first.name, first.input, first.outcome, first.created_by) == ("zeta", INPUT, OUTCOME, "user:marketer")
    with db.begin() as conn:
        again = scenarios.save(conn, lens, "zeta", {**INPUT, "user_id": "u-2"}, None, "user:other",
                               NOW + timedelta(hours=1))
    assert again.id == first.id and again.input["user_id"] == "u-2" and again.outcome is None
    assert again.created_by == "user:marketer" and again.created_at == NOW
    assert again.updated_at == NOW + timedelta(hours=1)
    with db.connect() as conn:
        assert [s.name for s in scenarios.list_for(conn, lens)] == ["alpha", "zeta"]


def test_accepting_replaces_the_outcome(db: Engine) -> None:
    with db.begin() as conn:
        lens = journey(conn, "lens")
        saved = scenarios.save(conn, lens, "buyer", INPUT, OUTCOME, None, NOW)
        assert scenarios.accept(conn, lens, saved.id, {"lines": ["changed"]}, NOW + timedelta(days=1))
        assert not scenarios.accept(conn, lens, saved.id + 100, {"lines": []}, NOW)
    with db.connect() as conn:
        found = scenarios.get(conn, lens, saved.id)
    assert found is not None and found.outcome == {"lines": ["changed"]}
    assert found.updated_at == NOW + timedelta(days=1)


def test_one_journeys_scenarios_are_not_anothers(db: Engine) -> None:
    with db.begin() as conn:
        lens, care = journey(conn, "lens"), journey(conn, "care")
        saved = scenarios.save(conn, lens, "buyer", INPUT, OUTCOME, None, NOW)
        scenarios.save(conn, care, "buyer", INPUT, None, None, NOW)  # the same name is fine elsewhere
        assert scenarios.get(conn, care, saved.id) is None
        assert not scenarios.accept(conn, care, saved.id, {"lines": []}, NOW)
        assert not scenarios.delete_one(conn, care, saved.id)
        assert scenarios.delete_one(conn, lens, saved.id)
        assert scenarios.list_for(conn, lens) == []
        assert [s.name for s in scenarios.list_for(conn, care)] == ["buyer"]
