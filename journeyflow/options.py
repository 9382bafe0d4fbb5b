"""Options shared by several commands, declared once so that their names, environment
variables and help read the same everywhere (and the settings file can name them once).

The database: every command that opens one takes `--database URL` and `--data-dir DIR`. With no
URL (from the flag, `$JOURNEYFLOW_DATABASE_URL` or the settings file) the database is the SQLite
file `journeyflow.db` in the data directory, which is the working directory unless said
otherwise. One directory, named once in `journeyflow.toml` or the environment, is how `serve`
and a `deliveries` typed later from another directory find the same file.

Commands that start work (`serve`, `process`, `dispatch`, `import`, `keys create`) create the
database when there is none. Commands that look at or repair what is there (`deliveries`,
`dead-letters`, `keys list`, `keys revoke`) never do: an empty database created by a typo'd
directory would answer "nothing here", which reads like the truth. They say which database they
looked for, and how it was chosen, instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine, inspect, make_url
from sqlalchemy.exc import ArgumentError

from engine.durable.backend import DEFAULT_RULES_BACKEND, RULES_BACKEND_ENV, RULES_BACKENDS
from storage import connect, migrate

DATABASE_URL_ENV = "JOURNEYFLOW_DATABASE_URL"
DATA_DIR_ENV = "JOURNEYFLOW_DATA_DIR"
DATABASE_FILE = "journeyflow.db"
SCHEMA_MARK = "alembic_version"  # the table every migrated Journeyflow database has
_CHOSEN = "journeyflow.database"  # ctx.meta key: how this command's database was chosen

rules_backend_option = click.option(
    "--rules-backend", "rules_backend", type=click.Choice(RULES_BACKENDS), envvar=RULES_BACKEND_ENV,
    default=DEFAULT_RULES_BACKEND, show_default=True,
    help=f"What evaluates the journeys' conditions (also ${RULES_BACKEND_ENV}); durable needs the durable extra.")

TIMEZONE_ENV = "JOURNEYFLOW_TIMEZONE"
DEFAULT_TIMEZONE = "UTC"


def _known_zone(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from engine.timing import known_zone

    if known_zone(value) is None:
        raise click.BadParameter(f"{value!r} is not a time zone of the tz database (for example Asia/Shanghai)")
    return value


timezone_option = click.option(
    "--timezone", "default_zone", envvar=TIMEZONE_ENV, default=DEFAULT_TIMEZONE, show_default=True,
    callback=_known_zone,
    help=f"The installation's default time zone (also ${TIMEZONE_ENV}): for users whose profile has no known "
         "zone, in journeys without a `timezone`.")

F = TypeVar("F", bound=Callable[..., Any])

_SOURCES = {  # how an option got its value, as messages say it
    click.core.ParameterSource.COMMANDLINE: "given by {flag}",
    click.core.ParameterSource.ENVIRONMENT: "given by ${env}",
    click.core.ParameterSource.DEFAULT_MAP: "given by `{key}` in the settings file",
}


_RANKS = (click.core.ParameterSource.DEFAULT_MAP, click.core.ParameterSource.ENVIRONMENT,
          click.core.ParameterSource.COMMANDLINE)


def default_database_url(data_dir: Path) -> str:
    """The embedded database's URL for a data directory, absolute, so that every message shows
    the file it means."""
    return f"sqlite:///{(data_dir / DATABASE_FILE).absolute()}"


def _rank(ctx: click.Context, name: str) -> int:
    source = ctx.get_parameter_source(name)
    return _RANKS.index(source) if source in _RANKS else -1


def _origin(ctx: click.Context, name: str, flag: str, env: str, key: str) -> str | None:
    source = ctx.get_parameter_source(name)
    shown = _SOURCES.get(source) if source is not None else None
    return shown.format(flag=flag, env=env, key=key) if shown else None


def database_options(command: F) -> F:
    """`--database` and `--data-dir` for a command that takes `database_url: str`: the command
    is given the URL they resolve to (the flag's, else the data directory's `journeyflow.db`)."""

    @functools.wraps(command)
    def resolved(*args: Any, database_url: str | None, data_dir: Path | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        # Each option's own order is Click's (flag, environment, settings file); between the two,
        # the one set at the nearer level wins, and the URL when they are level.
        if database_url and _rank(ctx, "database_url") >= _rank(ctx, "data_dir"):
            how = _origin(ctx, "database_url", "--database", DATABASE_URL_ENV, "database") or "given by --database"
        else:
            database_url = default_database_url(data_dir or Path())
            given = _origin(ctx, "data_dir", "--data-dir", DATA_DIR_ENV, "data_dir")
            how = (f"{DATABASE_FILE} in the data directory {given}" if given
                   else f"{DATABASE_FILE} in the working directory, the default data directory")
        ctx.meta[_CHOSEN] = how
        return command(*args, database_url=database_url, **kwargs)

    resolved = click.option(
        "--data-dir", "data_dir", envvar=DATA_DIR_ENV, type=click.Path(file_okay=False, path_type=Path),
        help=f"Where the embedded database lives, as {DATABASE_FILE} (also ${DATA_DIR_ENV}; default: the working "
             "directory). Unused when a --database URL is set as near or nearer (flag, environment, settings "
             "file).")(resolved)
    resolved = click.option(
        "--database", "database_url", envvar=DATABASE_URL_ENV, metavar="URL",
        help=f"SQLAlchemy URL of the database (also ${DATABASE_URL_ENV}); default: sqlite:///DATA_DIR/"
             f"{DATABASE_FILE}.")(resolved)
    return resolved  # type: ignore[return-value]


class NoDatabase(click.ClickException):
    """A command that only looks at a database found none where it looked."""


def shown_database(url: str) -> str:
    """A database as a person reads it: a SQLite file's absolute path, else the URL without its
    password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database or "").absolute())
    return parsed.render_as_string(hide_password=True)


def _how_to_point() -> str:
    return (f"Point at yours with --data-dir DIR (or ${DATA_DIR_ENV}, or data_dir in journeyflow.toml), or "
            f"with --database URL (or ${DATABASE_URL_ENV}); `journeyflow serve` creates one.")


def open_database(url: str, *, create: bool) -> Engine:
    """The database at `url`, migrated to the newest schema. With `create=False` one that does not
    exist yet, or holds no Journeyflow tables, is refused (NoDatabase) and left as it was."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise click.BadParameter(str(error), param_hint="--database") from None
    chosen = click.get_current_context(silent=True)
    how = chosen.meta.get(_CHOSEN, "given by --database") if chosen is not None else "given by --database"
    sqlite_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if not create:
        if parsed.get_backend_name() == "sqlite" and not sqlite_file:
            raise NoDatabase(f"{url} is an in-memory database: it holds nothing to look at. {_how_to_point()}")
        if sqlite_file and not parsed.query.get("uri") and not Path(parsed.database or "").is_file():
            raise NoDatabase(f"no database at {shown_database(url)} ({how}); nothing was created. {_how_to_point()}")
    elif sqlite_file and not parsed.query.get("uri"):
        Path(parsed.database or "").absolute().parent.mkdir(parents=True, exist_ok=True)
    db = connect(url)
    try:
        if not create:
            with db.connect() as conn:
                found = inspect(conn).has_table(SCHEMA_MARK)
            if not found:
                raise NoDatabase(f"{shown_database(url)} ({how}) holds no Journeyflow data: it has never been served. "
                                 f"{_how_to_point()}")
        migrate(db)
    except BaseException:
        db.dispose()
        raise
    return db
