"""Real Redis and PostgreSQL for the worker tests, and `journeyflow worker` processes.

Redis comes from JOURNEYFLOW_TEST_REDIS_URL or the local default; unreachable, its tests are
skipped, except under CI=true, where they fail (as PostgreSQL's do, tests/conftest.py). Each
test gets a queue name of its own (every Redis key it causes starts with it, and they are
deleted after), and a PostgreSQL schema of its own, migrated and dropped after.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine

from storage import connect, migrate

from ..conftest import _in_schema, _Schemas
from .fleet import Fleet

REDIS_URL_VARIABLE = "JOURNEYFLOW_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
START_REDIS = "start Redis on 127.0.0.1:6379 or set JOURNEYFLOW_TEST_REDIS_URL"


def unreachable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server's URL, once it has answered; skip (or fail under CI) otherwise."""
    url = os.environ.get(REDIS_URL_VARIABLE, DEFAULT_REDIS_URL)
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except (RedisError, OSError) as error:
        unreachable(f"Redis unreachable at {url}: {START_REDIS} ({error})")
    finally:
        client.close()
    return url


def forget(url: str, queue: str) -> None:
    """Delete every key of `queue`: ours (<queue>:...) and arq's around our job ids."""
    client = Redis.from_url(url)
    try:
        for pattern in (f"{queue}:*", f"arq:*:{queue}:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"jf-test-{secrets.token_hex(4)}"
    yield name
    forget(redis_url, name)


@pytest.fixture
def pg(pg_url: str, pg_schemas: _Schemas) -> Iterator[tuple[str, Engine]]:
    """A migrated schema of this test's own: its URL (for worker processes) and an engine."""
    schema = pg_schemas.create()
    url = _in_schema(pg_url, schema)
    engine = connect(url)
    migrate(engine)
    yield url, engine
    engine.dispose()
    pg_schemas.drop(schema)


@pytest.fixture
def fleet(redis_url: str, pg: tuple[str, Engine], queue: str, tmp_path: Path) -> Iterator[Fleet]:
    workers = Fleet(redis_url, pg[0], queue, tmp_path)
    yield workers
    workers.kill_all()

