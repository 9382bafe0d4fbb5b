"""Signed webhooks: the receiver can tell a call came from us, unaltered, and recently.

    Journeyflow-Signature: t=1767614400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

`v1` is HMAC-SHA256 with the shared secret over `"<t>." + body` (the exact bytes sent). Signing
the timestamp with the body lets a receiver refuse an old call replayed by someone who captured
it: `verify` rejects a timestamp further than `tolerance` from its own clock. Several `v1=`
values may appear while a secret is being rotated; one match is enough. A receiver should also
deduplicate by the `Idempotency-Key` header: a retried call carries the same key. The signature
covers neither the receiver's URL nor the method, and receivers depend on it as it is: give each
endpoint its own secret, so a call captured at one cannot be replayed at another, and refuse a
repeated `Idempotency-Key`, so it cannot be replayed at the same one within the window.

`verify` parses the header strictly (`t` ASCII digits of bounded length, each `v1` exactly 64
lower-case hex digits, nothing else but other schemes' `name=value` parts, which a later
version may add) and raises `SignatureInvalid`, and nothing else, for any header at all: a
receiver that catches it must never answer 500 to what an attacker sends.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from .errors import SignatureInvalid

SIGNATURE_HEADER = "Journeyflow-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 4_096  # room for t= and a few dozen v1= during a rotation
MAX_TIMESTAMP_DIGITS = 15  # unix seconds far past any clock; int() of 5,000 digits is refused this way
_NAME = re.compile(r"[A-Za-z0-9]{1,16}")
_TIMESTAMP = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")  # not isdigit(): it takes "²" and "١"
_MAC = re.compile(r"[0-9a-f]{64}")
MALFORMED = f"malformed {SIGNATURE_HEADER} header: expected t=<unix seconds>,v1=<64 lower-case hex digits>"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secrets: str | Iterable[str], header: str | None, body: bytes, now: int,
           tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> int:
    """Check a received signature header; the signed timestamp, or `SignatureInvalid` saying why."""
    if not header:
        raise SignatureInvalid(f"no {SIGNATURE_HEADER} header")
    timestamp, candidates = _parse(header)
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid(f"signed at {timestamp}, {now - timestamp}s from now: outside {tolerance}s (a replay?)")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [signature(key, timestamp, body) for key in keys]
    # Both sides are ASCII hex (checked in _parse), which compare_digest needs of a str.
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureInvalid("the signature does not match the body (wrong secret, or the body was altered)")
    return timestamp


def _parse(header: str) -> tuple[int, list[str]]:
    """(t, the v1 values) of a header, or `SignatureInvalid`."""
    if not isinstance(header, str) or len(header) > MAX_HEADER_LENGTH:
        raise SignatureInvalid(f"{MALFORMED} (at most {MAX_HEADER_LENGTH} characters)")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, equals, value = part.strip(" \t").partition("=")  # no regex over the value: linear
        if not equals or _NAME.fullmatch(name) is None:
            raise SignatureInvalid(MALFORMED)
        if name == "t":
            if timestamp is not None or _TIMESTAMP.fullmatch(value) is None:
                raise SignatureInvalid(f"{MALFORMED} (t= once, at most {MAX_TIMESTAMP_DIGITS} digits)")
            timestamp = int(value)
        elif name == "v1":
            if _MAC.fullmatch(value) is None:
                raise SignatureInvalid(f"{MALFORMED} (v1= must be 64 lower-case hex digits)")
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid(MALFORMED)
    return timestamp, candidates
