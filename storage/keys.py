"""API keys: who may send events (write keys) and who may manage journeys (admin keys).

Only a SHA-256 hash of each key is stored, with a short prefix so people can tell keys apart
in a listing. A plain, fast hash is enough because a key is 32 random bytes: nobody can guess
one from its hash, so the slow, salted hashes that protect human passwords would add only
latency to every request, and a deterministic hash lets the key be found by an index lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CheckConstraint, Column, Connection, Integer, Row, String, Table, func, insert, select, update

from .tables import metadata
from .types import UTCDateTime

KeyKind = Literal["write", "admin"]
KEY_KINDS: tuple[KeyKind, ...] = ("write", "admin")
KEY_RANDOM_BYTES = 32  # 256 bits: beyond guessing, which is what makes an unsalted hash safe
PREFIX_LENGTH = 14  # "jf_write_" or "jf_admin_" and a few random characters, shown in listings

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("hash", String, nullable=False, unique=True),  # sha256 hex of the whole key
    Column("prefix", String, nullable=False),  # the key's first characters, for people
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    CheckConstraint("kind IN ('write', 'admin')", name="kind"),
)


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: int
    name: str
    kind: KeyKind
    prefix: str
    hash: str
    created_at: datetime
    revoked_at: datetime | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(kind: KeyKind) -> str:
    """A fresh key; its kind is visible in it so that a leaked key is easy to triage."""
    return f"jf_{kind}_{secrets.token_urlsafe(KEY_RANDOM_BYTES)}"


def create(conn: Connection, kind: KeyKind, name: str, now: datetime) -> tuple[ApiKey, str]:
    """Store a new key; (the stored key, the secret itself, which is shown once and never again)."""
    if kind not in KEY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(KEY_KINDS)}")
    secret = new_key(kind)
    row = conn.execute(insert(api_keys).values(
        name=name, kind=kind, hash=key_hash(secret), prefix=secret[:PREFIX_LENGTH], created_at=now,
    ).returning(*api_keys.c)).one()
    return _key(row), secret


def find(conn: Connection, secret: str) -> ApiKey | None:
    """The unrevoked key with this secret, if there is one."""
    row = conn.execute(select(api_keys).where(
        api_keys.c.hash == key_hash(secret), api_keys.c.revoked_at.is_(None))).one_or_none()
    return _key(row) if row is not None else None


def get(conn: Connection, key_id: int) -> ApiKey | None:
    """The unrevoked key with this id (signed requests name their key by id)."""
    row = conn.execute(select(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))).one_or_none()
    return _key(row) if row is not None else None


def list_all(conn: Connection) -> list[ApiKey]:
    return [_key(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def revoke(conn: Connection, key_id: int, now: datetime) -> bool:
    """Revoke a key; False if there is no such key or it was revoked already."""
    done = conn.execute(update(api_keys).where(
        api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now))
    return done.rowcount == 1


def count_active(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None)))
               .scalar_one())


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(row.id, row.name, cast(KeyKind, row.kind), row.prefix, row.hash, row.created_at, row.revoked_at)
