"""The audience estimate (builder_ui/audience.py) on a real SQLite file: every profile when few,
a random sample when many, merged-away profiles never counted, `count of` answered from the
stored events as the engine answers it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from builder_ui import audience
from dsl import model as m
from dsl import parse
from storage import connect, migrate
from storage.tables import events, profiles

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'audience.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def add_profiles(db: Engine, rows: list[dict[str, object]]) -> list[int]:
    with db.begin() as conn:
        return [int(conn.execute(insert(profiles).values(created_at=NOW, updated_at=NOW, **row)
                                 .returning(profiles.c.id)).scalar_one()) for row in rows]


def add_purchases(db: Engine, profile_ids: list[int], days_ago: int) -> None:
    at = NOW - timedelta(days=days_ago)
    with db.begin() as conn:
        conn.execute(insert(events), [{"message_id": f"p-{pid}-{days_ago}", "profile_id": pid, "type": "track",
                                       "name": "purchase", "properties": {"amount": 300}, "occurred_at": at,
                                       "received_at": at, "processed_at": at} for pid in profile_ids])


def audience_of(condition: str) -> m.Audience:
    journey = parse(f'journey "J"\n  trigger api\n  audience {condition}\n\n  add tag "x"\n')
    assert journey.audience is not None
    return journey.audience


def test_few_profiles_are_all_checked_with_their_tags_and_purchase_history(db: Engine) -> None:
    ids = add_profiles(db, [{"traits": {"n": i}, "tags": ["vip"] if i % 2 == 0 else []} for i in range(10)])
    add_purchases(db, [pid for i, pid in enumerate(ids) if i % 3 == 0], days_ago=10)  # 0, 3, 6, 9
    add_purchases(db, [ids[4]], days_ago=400)  # outside the window
    found = audience.estimate(db, NOW, audience_of('"vip" in user.tags and count of "purchase" within 365d >= 1'))
    assert (found.matching, found.checked, found.population) == (2, 10, 10)  # profiles 0 and 6
    assert not found.sampled
    everyone = audience.estimate(db, NOW, None)
    assert (everyone.matching, everyone.population) == (10, 10)


def test_merged_away_profiles_are_not_people(db: Engine) -> None:
    survivor, = add_profiles(db, [{"traits": {}}])
    add_profiles(db, [{"traits": {"ghost": True}, "merged_into": survivor} for _ in range(5)])
    found = audience.estimate(db, NOW, audience_of("exists(user.ghost)"))
    assert (found.matching, found.checked, found.population) == (0, 1, 1)


def test_many_profiles_are_estimated_from_a_random_sample(db: Engine) -> None:
    ids = add_profiles(db, [{"traits": {"n": i}} for i in range(400)])
    # Merged profiles leave holes in the id range: the sample must fill itself around them.
    add_profiles(db, [{"traits": {"n": -1}, "merged_into": ids[0]} for _ in range(100)])
    found = audience.estimate(db, NOW, audience_of("user.n < 200"), size=60, rng=random.Random(7))
    assert (found.checked, found.population) == (60, 400)
    assert found.sampled
    assert 15 <= found.matching <= 45  # about half; the lowest 60 ids would all match
    assert 0 < found.scaled < 400


def test_a_sample_of_a_dense_range_takes_distinct_profiles(db: Engine) -> None:
    add_profiles(db, [{"traits": {"n": i}} for i in range(70)])
    found = audience.estimate(db, NOW, audience_of("user.n >= 0"), size=65, rng=random.Random(1))
    assert (found.matching, found.checked, found.population) == (65, 65, 70)
