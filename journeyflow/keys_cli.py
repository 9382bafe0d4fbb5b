"""`journeyflow keys`: create, list and revoke API keys. A key's secret is printed once, at
creation; only its hash is stored, so a lost key is revoked and replaced, never recovered."""

from __future__ import annotations

import click

from engine.clock import SystemClock
from storage import keys

from .options import database_options, open_database


@click.group(name="keys")
def keys_group() -> None:
    """Create, list and revoke API keys (write keys send events; admin keys manage)."""


@keys_group.command()
@click.option("--kind", type=click.Choice(keys.KEY_KINDS), required=True)
@click.option("--name", required=True, help="Who or what the key is for.")
@database_options
def create(kind: keys.KeyKind, name: str, database_url: str) -> None:
    """Create a key and print its secret (shown this once)."""
    db = open_database(database_url, create=True)
    try:
        with db.begin() as conn:
            key, secret = keys.create(conn, kind, name, SystemClock().now())
    finally:
        db.dispose()
    click.echo(f"created {key.kind} key {key.id} ({key.name}); store it now, it is not shown again:")
    click.echo(secret)


@keys_group.command(name="list")
@database_options
def list_keys(database_url: str) -> None:
    """Every key: id, kind, name, prefix, created, revoked."""
    db = open_database(database_url, create=False)
    try:
        with db.connect() as conn:
            found = keys.list_all(conn)
    finally:
        db.dispose()
    for key in found:
        revoked = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.kind}\t{key.name}\t{key.prefix}...\t{key.created_at.isoformat()}\t{revoked}")


@keys_group.command()
@click.argument("key_id", type=int)
@database_options
def revoke(key_id: int, database_url: str) -> None:
    """Revoke a key; running servers stop accepting it within their key cache time (5 s)."""
    db = open_database(database_url, create=False)
    try:
        with db.begin() as conn:
            done = keys.revoke(conn, key_id, SystemClock().now())
    finally:
        db.dispose()
    if not done:
        raise click.ClickException(f"no active key {key_id}")
    click.echo(f"revoked key {key_id}")
