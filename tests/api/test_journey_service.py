"""Publishing what was reviewed: a draft saved after a person reviewed it is not published in
its place (the builder's review passes the text it showed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import journey_service
from api.auth import KeyStore
from api.ingest_queue import IngestQueue
from api.problems import Problem
from api.services import Services
from api.settings import Settings
from engine.runtime import Runtime
from storage import connect, migrate

REVIEWED = 'journey "Reviewed"\n  trigger event "signup"\n\n  send sms "Hello"\n'
CHANGED = REVIEWED.replace("Hello", "Changed after the review")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'journeys.db'}")
    db = connect(settings.database_url)
    migrate(db)
    runtime = Runtime(db, settings.clock)
    keys = KeyStore(db, settings.key_cache_seconds, settings.signature_tolerance_seconds)
    built = Services(settings, db, runtime, keys, IngestQueue(lambda messages: 0, 10), threading.RLock())
    yield built
    db.dispose()


def test_a_draft_changed_since_the_review_is_refused_and_stays_a_draft(svc: Services) -> None:
    journey_service.create(svc, REVIEWED, "reviewed")
    journey_service.save_draft(svc, "reviewed", CHANGED)
    with pytest.raises(Problem) as refused:
        journey_service.publish(svc, "reviewed", "user:lin", expected_source=REVIEWED)
    assert refused.value.status == 409 and "changed since it was reviewed" in refused.value.detail
    assert journey_service.read(svc, "reviewed")["live_version"] is None


def test_the_reviewed_draft_is_published(svc: Services) -> None:
    journey_service.create(svc, REVIEWED, "reviewed")
    published = journey_service.publish(svc, "reviewed", "user:lin", expected_source=REVIEWED)
    assert published["live_version"] == 1
