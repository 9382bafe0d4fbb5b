"""Password hashing for builder users: argon2id through argon2-cffi.

People reuse passwords, so a leaked users table must not give them away: argon2id is slow
and memory-hard on purpose, and salted per hash. The library's defaults follow RFC 9106's
second recommended profile; `needs_rehash` lets a login quietly upgrade an old hash when
those defaults rise.
"""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

GENERATED_PASSWORD_BYTES = 18  # the first admin's password: 24 URL-safe characters


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(password_hash: str, password: str) -> bool:
    """True if `password` matches; never raises for a wrong password or a damaged hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against when the user name is unknown, so that answering "no such
    user" takes as long as "wrong password" and the timing does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
