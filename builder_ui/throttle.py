"""Slowing down password guessing, without handing attackers a way to lock anyone out.

Every attempt is counted before its password is checked, in the database
(`storage.login_attempts`): one atomic increment per key, committed before argon2 runs. So
concurrent guesses, and guesses spread over several server processes, all see the same
counts, and an attempt past an allowance is refused (429, with the wait) without being
checked at all.

Counting per account alone would let anyone lock the real user out by failing a few times;
counting per address alone would let a botnet guess at one account from thousands of
addresses. So what an attempt counts against depends on who makes it (OWASP's "device
cookies"): a successful sign-in gives the browser a long-lived cookie, signed and bound to
that user (`new_device_cookie`). Then:

===========================  ====================================  =========  ========
key                          counts the attempts                   allowance  window
===========================  ====================================  =========  ========
`device:ID`                  with a valid device cookie for the        20     15 min
                             account named: nothing else
`source:ADDRESS`             without one, from one address, at         20     15 min
                             any accounts (stops a spray)
`source:ADDRESS|account:N`   without one, at account N from that        5     15 min
                             address (stops one address guessing)
`strangers|account:N`        without one, at account N from            20     1 hour
                             anywhere (stops a botnet guessing)
===========================  ====================================  =========  ========

The last key can stop strangers from signing in to an account while it is being guessed at,
and only strangers: the account's own browsers hold device cookies, counted apart, so a
flood from elsewhere never reaches them. A device past its own (generous) allowance waits
like anyone: a stolen cookie buys no more than that.

Windows are fixed: the first attempt opens one, the first after it ended starts again. A
success starts the device's count and the account-from-that-address count afresh, and takes
its own attempt back from the address's and the strangers' counts: it was no guess, but the
other attempts there may have been (guesses at other accounts from the same address must
still count). Addresses are `request.client.host`; IPv6 ones count per /64, the block one
machine usually gets, so rotating through it does not buy fresh allowances.

The device cookie's signature is keyed by the user's password hash, which every process
reads from the database and which never leaves the server: no secret to configure or share,
and changing the password (or a re-hash) retires every device cookie of that user.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from api.services import Services
from storage import login_attempts, users
from storage.database import writer

from . import sessions


@dataclass(frozen=True)
class Limit:
    attempts: int  # admitted per window; the next ones are refused, unchecked, until it ends
    window: timedelta
    success_clears: bool  # a success starts the count afresh (else it only takes its own attempt back)


DEVICE = Limit(20, timedelta(minutes=15), success_clears=True)
SOURCE = Limit(20, timedelta(minutes=15), success_clears=False)
ACCOUNT_FROM_SOURCE = Limit(5, timedelta(minutes=15), success_clears=True)
ACCOUNT_FROM_STRANGERS = Limit(20, timedelta(hours=1), success_clears=False)

DEVICE_COOKIE = "jf_device"
DEVICE_COOKIE_PATH = "/builder/login"  # the one address that reads it: no other request carries it
DEVICE_LIFETIME = timedelta(days=365)  # signed into the cookie, so the server enforces it too
DEVICE_ID_BYTES = 16
CLEANUP_BATCH = 100  # ended rows deleted by an attempt that opened a window: more than it creates
MAX_NAME_IN_KEY = 64  # longer typed names are hashed, so a key stays small whatever is posted
IPV6_PREFIX = 64


@dataclass(frozen=True)
class Counted:
    key: str
    limit: Limit
    window_ends_at: datetime


@dataclass(frozen=True)
class Admission:
    """What counting one attempt decided: check its password (`wait_seconds` 0) or refuse it."""

    wait_seconds: float
    counted: tuple[Counted, ...]  # what a success has to clear or refund


def source(request: Request) -> str:
    """The address an attempt counts against: one IPv4 address, or one IPv6 /64."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def keys(username: str, address: str, device: str | None) -> list[tuple[str, Limit]]:
    """What one attempt counts against, in the order they are counted. Every transaction takes
    these rows in that order (a device's alone; else address, then pair, then strangers), and
    none takes two of one kind, so concurrent attempts cannot deadlock."""
    if device is not None:
        return [(f"device:{device}", DEVICE)]
    name = _name(username)
    return [(f"source:{address}", SOURCE), (f"source:{address}|account:{name}", ACCOUNT_FROM_SOURCE),
            (f"strangers|account:{name}", ACCOUNT_FROM_STRANGERS)]


def admit(svc: Services, counted_keys: list[tuple[str, Limit]], now: datetime) -> Admission:
    """Count one attempt, committed before the caller checks any password, and say whether it
    may be checked. Counting stops at the first key past its allowance: the attempt is refused
    anyway, and the keys after it have nothing to learn from it.

    An attempt that opened a window (a new row, or an ended one restarted) then deletes a small
    batch of ended ones, in a transaction of its own (it takes rows in another order): rows go
    at least as fast as they come, and a flood of refused attempts at live keys writes nothing
    more.
    """
    counted: list[Counted] = []
    wait, opened = 0.0, False
    with svc.writing(), writer(svc.db).begin() as conn:
        for key, limit in counted_keys:
            found = login_attempts.count(conn, key, limit.window, now)
            counted.append(Counted(key, limit, found.window_ends_at))
            opened = opened or found.attempts == 1
            if found.attempts > limit.attempts:
                wait = (found.window_ends_at - now).total_seconds()
                break
    if opened:
        with svc.writing(), writer(svc.db).begin() as conn:
            login_attempts.delete_ended(conn, now, CLEANUP_BATCH)
    return Admission(wait, tuple(counted))


def succeeded(svc: Services, admission: Admission) -> None:
    """Clear or refund what a successful attempt counted, in the order it counted them."""
    with svc.writing(), writer(svc.db).begin() as conn:
        for counted in admission.counted:
            if counted.limit.success_clears:
                login_attempts.forget(conn, counted.key)
            else:
                login_attempts.refund(conn, counted.key, counted.window_ends_at)


def new_device_cookie(user: users.User, now: datetime) -> str:
    """`user id.expiry.device id.signature`: the device id is random, so each browser counts
    apart; the signature binds the rest to this user."""
    expires = int((now + DEVICE_LIFETIME).timestamp())
    payload = f"{user.id}.{expires}.{secrets.token_urlsafe(DEVICE_ID_BYTES)}"
    return f"{payload}.{_signature(user, payload)}"


def trusted_device(cookie: str | None, user: users.User | None, now: datetime) -> str | None:
    """The device id of `cookie` if it is an unexpired device cookie of `user` (the account the
    attempt names), else None: the attempt then counts as a stranger's."""
    if not cookie or user is None:
        return None
    parts = cookie.split(".")
    if len(parts) != 4:
        return None
    user_id, expires, device, signature = parts
    expected = _signature(user, f"{user_id}.{expires}.{device}")
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    if user_id != str(user.id) or not (expires.isascii() and expires.isdigit()) or int(expires) <= now.timestamp():
        return None
    return device


def set_device_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(DEVICE_COOKIE, value, max_age=int(DEVICE_LIFETIME.total_seconds()), path=DEVICE_COOKIE_PATH,
                        httponly=True, samesite="lax", secure=sessions.secure(request))


def _signature(user: users.User, payload: str) -> str:
    message = f"journeyflow device cookie|{payload}".encode()
    return hmac.new(user.password_hash.encode(), message, hashlib.sha256).hexdigest()


def _name(username: str) -> str:
    """The account part of a key: the typed name, lower-cased (guesses at `Admin` count with
    `admin`'s, so no spelling of a name gets an allowance of its own), hashed when long."""
    lowered = username.lower()
    if len(lowered) <= MAX_NAME_IN_KEY:
        return lowered
    return "sha256:" + hashlib.sha256(lowered.encode()).hexdigest()
