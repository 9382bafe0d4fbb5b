"""`journeyflow deliveries`, `journeyflow dispatch` and `journeyflow dead-letters`.

An edge: it reads options, opens the database, and prints; the work is in `actions.outbox` and
`actions.dispatcher`. Our own errors (bad settings) become one line on stderr and exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from engine.clock import SystemClock
from storage import connect, migrate

from . import outbox
from .dispatcher import Dispatcher
from .errors import ActionsError
from .settings import SETTINGS_FILE_ENV, Settings, load_settings

if TYPE_CHECKING:
    from rich.table import Table

DATABASE_URL_ENV = "JOURNEYFLOW_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///journeyflow.db"
STATUS_STYLES = {"sent": "green", "pending": "cyan", "deferred": "yellow", "suppressed": "dim", "failed": "red",
                 "dead": "bold red", "uncertain": "magenta"}
STATUSES = tuple(STATUS_STYLES)

database_option = click.option(
    "--database", "database_url", envvar=DATABASE_URL_ENV, default=DEFAULT_DATABASE_URL, show_default=True,
    help=f"SQLAlchemy URL of the database (also ${DATABASE_URL_ENV}).")


@contextmanager
def _database(url: str) -> Iterator[Engine]:
    """The database at `url`, migrated; its connections closed when the command is done."""
    db = connect(url)
    try:
        migrate(db)
        yield db
    finally:
        db.dispose()


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _print(rows: list[outbox.DeliveryRow], title: str) -> None:
    from rich.console import Console  # imported here: the rest of the CLI works without rich

    Console().print(_table(rows, title))


def _table(rows: list[outbox.DeliveryRow], title: str) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for name in ("id", "send at", "sent at", "user", "journey", "step", "channel", "status", "tries", "provider",
                 "error"):
        table.add_column(name, overflow="fold")
    for row in rows:
        style = STATUS_STYLES.get(row.status, "")
        table.add_row(str(row.id), _when(row.send_at), _when(row.sent_at), row.user, row.journey or "",
                      row.step_id or "", row.channel, f"[{style}]{row.status}[/]" if style else row.status,
                      str(row.attempts), row.provider or "", row.error or "")
    return table


@click.command()
@database_option
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these statuses (repeat).")
@click.option("--journey", help="Only this journey (its slug).")
@click.option("--user", help="Only this user: any of their identities (user id, phone, email...).")
@click.option("--channel", "channels", multiple=True, type=click.Choice(["sms", "push", "webhook", "coupon"]))
@click.option("--limit", default=50, show_default=True, help="At most this many rows, newest first.")
def deliveries(database_url: str, statuses: tuple[str, ...], journey: str | None, user: str | None,
               channels: tuple[str, ...], limit: int) -> None:
    """What was sent (or held back), to whom, when, by which step, with its status."""
    with _database(database_url) as db, db.connect() as conn:
        rows = outbox.deliveries(conn, statuses, journey, user, channels, limit)
    _print(rows, f"Deliveries ({len(rows)} shown)")


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ActionsError as error:
        raise click.ClickException(str(error)) from error


@click.command()
@database_option
@click.option("--actions-settings", "--settings", "settings_path", envvar=SETTINGS_FILE_ENV,
              type=click.Path(dir_okay=False, path_type=Path),
              help=f"The actions settings TOML file (also ${SETTINGS_FILE_ENV}); without it, every channel logs. "
                   "(--settings is its older name.)")
@click.option("--once", is_flag=True, help="Dispatch one batch, then stop.")
@click.option("--until-idle", is_flag=True, help="Stop when nothing is due.")
def dispatch(database_url: str, settings_path: Path | None, once: bool, until_idle: bool) -> None:
    """Send due outbox rows through the configured providers, batch after batch."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(settings_path)

    async def work(db: Engine) -> dict[str, int]:
        try:
            async with Dispatcher(db, settings, SystemClock()) as dispatcher:
                if once:
                    return dict((await dispatcher.dispatch_once()).statuses)
                return dict(await dispatcher.run(until_idle=until_idle))
        except ActionsError as error:
            raise click.ClickException(str(error)) from error

    with _database(database_url) as db:
        done = asyncio.run(work(db))
    click.echo(", ".join(f"{status}: {n}" for status, n in sorted(done.items())) or "nothing was due")


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages that ran out of attempts (dead), were refused (failed) or may not have arrived (uncertain)."""


@dead_letters.command("list")
@database_option
@click.option("--status", "statuses", multiple=True, type=click.Choice(outbox.RETRYABLE_BY_HAND),
              help="Which kinds (repeat); default: dead.")
@click.option("--journey", help="Only this journey (its slug).")
@click.option("--limit", default=50, show_default=True)
def list_dead(database_url: str, statuses: tuple[str, ...], journey: str | None, limit: int) -> None:
    """List dead letters with their last error."""
    with _database(database_url) as db, db.connect() as conn:
        rows = outbox.deliveries(conn, statuses or ("dead",), journey, None, (), limit)
    _print(rows, f"Dead letters ({len(rows)} shown)")


@dead_letters.command("retry")
@database_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every row with the chosen statuses.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(outbox.RETRYABLE_BY_HAND),
              help="With --all: which kinds (repeat); default: dead. Retrying 'uncertain' may send twice.")
def retry_dead(database_url: str, ids: tuple[int, ...], retry_all: bool, statuses: tuple[str, ...]) -> None:
    """Queue dead letters again, with a fresh set of attempts: by id, or --all."""
    if bool(ids) == retry_all:
        raise click.UsageError("give outbox ids, or --all")
    with _database(database_url) as db, db.begin() as conn:
        count = outbox.retry(conn, SystemClock().now(), ids, statuses or ("dead",))
    click.echo(f"{count} message(s) queued again")
