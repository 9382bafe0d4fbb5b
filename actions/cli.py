"""`journeyflow deliveries`, `journeyflow dispatch` and `journeyflow dead-letters`.

An edge: it reads options, opens the database, and prints; the work is in `actions.outbox` and
`actions.dispatcher`. Our own errors (bad settings) become one line on stderr and exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy import Engine

from engine.clock import SystemClock
from journeyflow.options import database_options, open_database

from . import outbox
from .dispatcher import Dispatcher
from .errors import ActionsError
from .settings import SETTINGS_FILE_ENV, Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

STATUS_STYLES = {"sent": "green", "pending": "cyan", "deferred": "yellow", "suppressed": "dim", "failed": "red",
                 "dead": "bold red", "uncertain": "magenta", "cancelled": "dim"}
STATUSES = tuple(STATUS_STYLES)
WIDE_ENOUGH_FOR_A_TABLE = 120  # terminal columns

@contextmanager
def _database(url: str, create: bool) -> Iterator[Engine]:
    """The database at `url`, migrated; its connections closed when the command is done. Only
    `dispatch` may create it: the listings and retries would find nothing in a new one, and say
    so as if it were the answer (journeyflow/options.py)."""
    db = open_database(url, create=create)
    try:
        yield db
    finally:
        db.dispose()


def _when(row: outbox.DeliveryRow) -> str:
    """When it went, or when it is (was) due: one moment per row keeps the table narrow."""
    if row.sent_at is not None:
        return row.sent_at.strftime("%Y-%m-%d %H:%M:%S")
    return "due " + row.send_at.strftime("%Y-%m-%d %H:%M:%S")


def _status(row: outbox.DeliveryRow) -> str:
    style = STATUS_STYLES.get(row.status, "")
    shown = f"[{style}]{row.status}[/]" if style else row.status
    details = [d for d in (row.provider, f"{row.attempts} tries" if row.attempts > 1 else None) if d]
    return f"{shown} ({', '.join(details)})" if details else shown


def _said(row: outbox.DeliveryRow) -> str:
    """The message as sent, and any error (in red): markup, escaped, since a message or an error
    may hold [brackets] that rich would take for its own."""
    from rich.markup import escape

    parts = [escape(row.content)] if row.content else []
    if row.error:
        parts.append(f"[red]{escape(row.error)}[/]")
    return "\n".join(parts)


def _print(rows: list[outbox.DeliveryRow], title: str) -> None:
    """A table where there is room for one; otherwise each delivery as a short block, so that the
    message, which is what a reader came for, is never the column squeezed to nothing."""
    from rich.console import Console  # imported here: the rest of the CLI works without rich

    console = Console()
    if console.width >= WIDE_ENOUGH_FOR_A_TABLE:
        console.print(_table(rows, title))
    else:
        _blocks(console, rows, title)


def _blocks(console: Console, rows: list[outbox.DeliveryRow], title: str) -> None:
    from rich.markup import escape
    from rich.padding import Padding

    console.print(f"[bold]{escape(title)}[/], newest first; times in UTC")
    for row in rows:
        step = " / ".join(part for part in (row.journey, row.step_id) if part)
        to = f" to {escape(row.recipient)}" if row.recipient else ""
        console.print(f"[bold]{row.id}[/]  {_when(row)}  {_status(row)}  {row.channel}{to}")
        console.print(Padding(f"{escape(row.user)}, {escape(step)}" if step else escape(row.user), (0, 0, 0, 4),
                              expand=False))
        said = _said(row)
        if said:
            console.print(Padding(said, (0, 0, 0, 4), expand=False))


def _table(rows: list[outbox.DeliveryRow], title: str) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, expand=True)
    for name in ("id", "when (UTC)", "user", "journey / step", "channel", "status", "to"):
        table.add_column(name, no_wrap=name in ("id", "when (UTC)", "channel"), overflow="fold")
    table.add_column("message", overflow="fold", ratio=1)
    for row in rows:
        step = " / ".join(part for part in (row.journey, row.step_id) if part)
        table.add_row(str(row.id), _when(row), escape(row.user), escape(step), row.channel, _status(row),
                      escape(row.recipient or ""), _said(row))
    return table


@click.command()
@database_options
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these statuses (repeat).")
@click.option("--journey", help="Only this journey (its slug).")
@click.option("--user", help="Only this user: any of their identities (user id, phone, email...).")
@click.option("--channel", "channels", multiple=True, type=click.Choice(["sms", "push", "webhook", "coupon"]))
@click.option("--limit", default=50, show_default=True, help="At most this many rows, newest first.")
def deliveries(database_url: str, statuses: tuple[str, ...], journey: str | None, user: str | None,
               channels: tuple[str, ...], limit: int) -> None:
    """What was sent (or held back), to whom, when, by which step, with its status."""
    with _database(database_url, create=False) as db, db.connect() as conn:
        rows = outbox.deliveries(conn, statuses, journey, user, channels, limit)
    _print(rows, f"Deliveries ({len(rows)} shown)")


def _settings(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ActionsError as error:
        raise click.ClickException(str(error)) from error


@click.command()
@database_options
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

    with _database(database_url, create=True) as db:
        done = asyncio.run(work(db))
    click.echo(", ".join(f"{status}: {n}" for status, n in sorted(done.items())) or "nothing was due")


@click.group("dead-letters")
def dead_letters() -> None:
    """Messages that ran out of attempts (dead), were refused (failed) or may not have arrived (uncertain)."""


@dead_letters.command("list")
@database_options
@click.option("--status", "statuses", multiple=True, type=click.Choice(outbox.RETRYABLE_BY_HAND),
              help="Which kinds (repeat); default: dead.")
@click.option("--journey", help="Only this journey (its slug).")
@click.option("--limit", default=50, show_default=True)
def list_dead(database_url: str, statuses: tuple[str, ...], journey: str | None, limit: int) -> None:
    """List dead letters with their last error."""
    with _database(database_url, create=False) as db, db.connect() as conn:
        rows = outbox.deliveries(conn, statuses or ("dead",), journey, None, (), limit)
    _print(rows, f"Dead letters ({len(rows)} shown)")


@dead_letters.command("retry")
@database_options
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every row with the chosen statuses.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(outbox.RETRYABLE_BY_HAND),
              help="With --all: which kinds (repeat); default: dead. Retrying 'uncertain' may send twice.")
def retry_dead(database_url: str, ids: tuple[int, ...], retry_all: bool, statuses: tuple[str, ...]) -> None:
    """Queue dead letters again, with a fresh set of attempts: by id, or --all."""
    if bool(ids) == retry_all:
        raise click.UsageError("give outbox ids, or --all")
    with _database(database_url, create=False) as db, db.begin() as conn:
        count = outbox.retry(conn, SystemClock().now(), ids, statuses or ("dead",))
    click.echo(f"{count} message(s) queued again")
