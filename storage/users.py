"""People who use the builder, and their sessions.

A builder user signs in with a name and a password; only an argon2 hash of the password is
stored (hashing is done by `builder_ui.passwords`, so storage holds no crypto policy). A
session is a random token kept in an HttpOnly cookie; the table stores only the token's
SHA-256, so a copy of the database cannot be used to sign in. Each session carries its own
CSRF token, which every form and htmx request of that session must send back. Signing out
deletes the row, so a stolen cookie dies with the session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from .tables import metadata
from .types import UTCDateTime

TOKEN_BYTES = 32  # session and CSRF tokens: 256 random bits, beyond guessing, so an unsalted hash is enough

builder_users = Table(
    "builder_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),  # argon2id, in the PHC string format
    Column("is_admin", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime, nullable=True),
)

builder_sessions = Table(
    "builder_sessions",
    metadata,
    Column("token_hash", String, primary_key=True),  # sha256 hex of the cookie's token
    Column("user_id", Integer, ForeignKey("builder_users.id"), nullable=False),
    Column("csrf_token", String, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_builder_sessions_user_id", "user_id"),
)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    password_hash: str
    is_admin: bool


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(builder_users)).scalar_one())


def create_user(conn: Connection, username: str, password_hash: str, is_admin: bool, now: datetime) -> User:
    user_id = conn.execute(insert(builder_users).values(
        username=username, password_hash=password_hash, is_admin=is_admin, created_at=now,
    ).returning(builder_users.c.id)).scalar_one()
    return User(user_id, username, password_hash, is_admin)


def find_user(conn: Connection, username: str) -> User | None:
    row = conn.execute(select(builder_users).where(builder_users.c.username == username)).one_or_none()
    return _user(row) if row is not None else None


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    """Store a re-hashed password (argon2 parameters raised since it was first hashed)."""
    conn.execute(update(builder_users).where(builder_users.c.id == user_id).values(password_hash=password_hash))


def start_session(conn: Connection, user: User, now: datetime, lifetime: timedelta) -> tuple[str, Session]:
    """A new session for `user`: (the cookie's token, shown to the browser only, and the session)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    conn.execute(delete(builder_sessions).where(builder_sessions.c.expires_at <= now))  # keep the table small
    conn.execute(insert(builder_sessions).values(
        token_hash=token_hash(token), user_id=user.id, csrf_token=csrf, created_at=now, expires_at=now + lifetime))
    conn.execute(update(builder_users).where(builder_users.c.id == user.id).values(last_login_at=now))
    return token, Session(user, csrf, now + lifetime)


def session(conn: Connection, token: str, now: datetime) -> Session | None:
    """The unexpired session whose cookie holds `token`."""
    row = conn.execute(
        select(builder_users, builder_sessions.c.csrf_token, builder_sessions.c.expires_at)
        .join(builder_sessions, builder_sessions.c.user_id == builder_users.c.id)
        .where(builder_sessions.c.token_hash == token_hash(token), builder_sessions.c.expires_at > now)
    ).one_or_none()
    return Session(_user(row), row.csrf_token, row.expires_at) if row is not None else None


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(builder_sessions).where(builder_sessions.c.token_hash == token_hash(token)))


def _user(row: Row[Any]) -> User:
    return User(row.id, row.username, row.password_hash, bool(row.is_admin))
