"""`journeyflow serve`: the HTTP API under uvicorn, with the engine in the same process.

On first start (no key in the database) it creates a write key and an admin key and prints
them once, with the URL and a curl line that sends a track event, so a new user can try the
API in the first minute. When there is no builder user yet it creates the first one, an admin
named `admin` with a random password, and prints the builder's URL and that password once.
`--examples DIR` publishes the example journeys that are not loaded yet (matched by slug, the
file's name).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from sqlalchemy import Engine

from actions.settings import SETTINGS_FILE_ENV
from dsl import JourneyError
from engine.clock import Clock, SystemClock
from engine.runtime import Runtime
from storage import connect, keys, migrate, users
from storage import journeys as stored

from .keys_cli import DATABASE_URL_ENV, DEFAULT_DATABASE_URL
from .options import rules_backend_option

JOURNEY_SUFFIX = ".journey"
FIRST_ADMIN = "admin"  # the builder user created on first start


def load_examples(runtime: Runtime, directory: Path) -> list[str]:
    """Publish every journey file in `directory` whose slug is not in the database; the slugs."""
    loaded = []
    for path in sorted(directory.glob(f"*{JOURNEY_SUFFIX}")):
        with runtime.db.connect() as conn:
            if stored.get(conn, path.stem) is not None:
                continue
        try:
            runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
        except JourneyError as error:
            raise click.ClickException(error.render(str(path))) from None
        loaded.append(path.stem)
    return loaded


def create_first_admin(db: Engine, clock: Clock) -> str | None:
    """The builder's first user, an admin, when there is no user yet: its password (random,
    shown once by the caller, stored only as an argon2 hash); None when users exist."""
    from builder_ui.passwords import generate_password, hash_password

    with db.begin() as conn:
        if users.count(conn) > 0:
            return None
        password = generate_password()
        users.create_user(conn, FIRST_ADMIN, hash_password(password), True, clock.now())
    return password


def curl_line(url: str, write_key: str) -> str:
    body = '{"userId": "u1", "event": "signup", "properties": {"source": "app"}}'
    return (f"curl -sS -X POST {url}/v1/track -u {shlex.quote(write_key + ':')} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--database", "database_url", envvar=DATABASE_URL_ENV, default=DEFAULT_DATABASE_URL, show_default=True,
              help=f"SQLAlchemy URL of the database (also ${DATABASE_URL_ENV}).")
@click.option("--examples", "examples", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Publish the journeys in this directory that are not loaded yet.")
@click.option("--engine/--no-engine", "run_engine", default=True, show_default=True,
              help="Apply events and fire timers in this process (off when `journeyflow process` does it).")
@click.option("--dispatch/--no-dispatch", "run_dispatcher", default=True, show_default=True,
              help="Send outbox rows from this process (off when `journeyflow dispatch` does it).")
@click.option("--actions-settings", "actions_path", envvar=SETTINGS_FILE_ENV,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"Providers' settings (TOML; also ${SETTINGS_FILE_ENV}). Without it every message is logged, "
                   "not sent.")
@click.option("--redis", "redis_url", envvar="JOURNEYFLOW_REDIS_URL",
              help="Redis of `journeyflow worker` processes (also $JOURNEYFLOW_REDIS_URL): they apply events and "
                   "dispatch, not this process; /readyz and /metrics report their queue.")
@rules_backend_option
def serve(host: str, port: int, database_url: str, examples: Path | None, run_engine: bool, run_dispatcher: bool,
          actions_path: Path | None, redis_url: str | None, rules_backend: str) -> None:
    """Serve the HTTP API (and, by default, run the engine and the dispatcher) on one database."""
    import os

    from actions.errors import ActionsError
    from actions.settings import load_settings
    from api.app import create_app
    from api.settings import Settings

    try:
        actions = load_settings(actions_path, os.environ)
    except ActionsError as error:
        raise click.ClickException(str(error)) from None

    clock = SystemClock()
    db = connect(database_url)
    try:
        migrate(db)
        if examples is not None:
            loaded = load_examples(Runtime(db, clock), examples)
            if loaded:
                click.echo(f"published {len(loaded)} example journey(s): {', '.join(loaded)}")
        with db.begin() as conn:
            first = keys.count_active(conn) == 0
            if first:
                _, write = keys.create(conn, "write", "first write key", clock.now())
                _, admin = keys.create(conn, "admin", "first admin key", clock.now())
        builder_password = create_first_admin(db, clock)
    finally:
        db.dispose()
    url = f"http://{host}:{port}"
    click.echo(f"Journeyflow API on {url} (database {connect_display(database_url)})")
    if redis_url:  # workers do the engine's and the dispatcher's work (docs/deployment.md)
        run_engine = run_dispatcher = False
        click.echo("Events are applied and messages sent by `journeyflow worker` processes on that Redis.")
    if builder_password is not None:
        click.echo(f"Builder: {url}/builder/ (shown this once) user {FIRST_ADMIN}, password {builder_password}")
    if first:
        click.echo("Keys, shown this once (`journeyflow keys` manages them):")
        click.echo(f"  write key: {write}")
        click.echo(f"  admin key: {admin}")
        click.echo("Send an event:")
        click.echo(f"  {curl_line(url, write)}")
    sys.stdout.flush()  # the keys must reach a pipe before the server's logs do
    import uvicorn

    app = create_app(Settings(database_url=database_url, clock=clock, run_engine=run_engine,
                              run_dispatcher=run_dispatcher, actions=actions, redis_url=redis_url or None,
                              rules_backend=rules_backend))
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def connect_display(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)
