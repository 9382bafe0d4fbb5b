"""Real databases for the storage tests, both backends.

`db` is a migrated, empty database; `empty_db` one with no tables at all. Each is
parametrised over `sqlite` (a file in the test's tmp dir) and `postgresql` (a schema of this
session's own, so parallel sessions on one server never meet). PostgreSQL comes from
JOURNEYFLOW_TEST_PG_URL or the local default; when it cannot be reached its tests are skipped,
except under CI=true, where they fail: CI must never pass by testing one backend.

Speed: the schema is migrated once per session per backend. A SQLite test gets a copy of the
migrated file; PostgreSQL rows are deleted after each test (cheaper than TRUNCATE or a new
schema on tables this small).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from storage import connect, migrate
from storage.tables import metadata

PG_URL_VARIABLE = "JOURNEYFLOW_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START_POSTGRES = "start PostgreSQL on 127.0.0.1:5432 or set JOURNEYFLOW_TEST_PG_URL"
CONNECT_TIMEOUT_SECONDS = 3
BACKENDS = ["sqlite", "postgresql"]
SESSION_TIME_ZONE = "Asia/Shanghai"


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _in_schema(url: str, schema: str) -> str:
    """`url`, with every connection's search_path set to `schema`, and its time zone set away
    from UTC so that nothing passes only because the server happens to run in UTC."""
    options = f"-csearch_path={schema} -cTimeZone={SESSION_TIME_ZONE}"
    return make_url(url).update_query_dict({"options": options}).render_as_string(False)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL server's URL, once it has answered; skip (or fail under CI) otherwise."""
    url = os.environ.get(PG_URL_VARIABLE, DEFAULT_PG_URL)
    probe = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    try:
        with probe.connect():
            pass
    except OperationalError as error:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = " ".join(str(error.orig).split())
        message = f"PostgreSQL unreachable at {shown}: {START_POSTGRES} ({reason})"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    finally:
        probe.dispose()
    return url


class _Schemas:
    """Creates schemas named for this session and drops them all at its end."""

    def __init__(self, url: str) -> None:
        self.admin = connect(url)
        self.prefix = f"jf_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.count = 0

    def create(self) -> str:
        self.count += 1
        name = f"{self.prefix}_{self.count}"
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        return name

    def drop(self, name: str) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


@pytest.fixture(scope="session")
def pg_schemas(pg_url: str) -> Iterator[_Schemas]:
    schemas = _Schemas(pg_url)
    yield schemas
    schemas.admin.dispose()


@pytest.fixture(scope="session")
def migrated_pg_url(pg_url: str, pg_schemas: _Schemas) -> Iterator[str]:
    schema = pg_schemas.create()
    url = _in_schema(pg_url, schema)
    engine = connect(url)
    migrate(engine)
    engine.dispose()
    yield url
    pg_schemas.drop(schema)


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "journeyflow.db"
    engine = connect(_sqlite_url(path))
    migrate(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


def _delete_all_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in metadata.sorted_tables:  # break the cycles the sort leaves out first
            cyclic = {fk.parent.name: None for fk in table.foreign_keys if fk.use_alter}
            if cyclic:
                conn.execute(table.update().values(cyclic))
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database migrated to head, with no rows."""
    if backend == "sqlite":
        path = tmp_path / "journeyflow.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        engine = connect(_sqlite_url(path))
        yield engine
        engine.dispose()
    else:
        engine = connect(request.getfixturevalue("migrated_pg_url"))
        yield engine
        _delete_all_rows(engine)
        engine.dispose()


@pytest.fixture
def empty_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no tables at all."""
    if backend == "sqlite":
        engine = connect(_sqlite_url(tmp_path / "empty.db"))
        yield engine
        engine.dispose()
    else:
        schemas: _Schemas = request.getfixturevalue("pg_schemas")
        schema = schemas.create()
        engine = connect(_in_schema(request.getfixturevalue("pg_url"), schema))
        yield engine
        engine.dispose()
        schemas.drop(schema)
