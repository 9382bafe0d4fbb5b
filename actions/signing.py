"""Signed webhooks: the receiver can tell a call came from us, unaltered, and recently.

    Journeyflow-Signature: t=1767614400,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

`v1` is HMAC-SHA256 with the shared secret over `"<t>." + body` (the exact bytes sent). Signing
the timestamp with the body lets a receiver refuse an old call replayed by someone who captured
it: `verify` rejects a timestamp further than `tolerance` from its own clock. Several `v1=`
values may appear while a secret is being rotated; one match is enough. A receiver should also
deduplicate by the `Idempotency-Key` header: a retried call carries the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from .errors import SignatureInvalid

SIGNATURE_HEADER = "Journeyflow-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


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
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureInvalid(f"malformed {SIGNATURE_HEADER} header: expected t=<seconds>,v1=<hex>")
    if abs(now - timestamp) > tolerance:
        raise SignatureInvalid(f"signed at {timestamp}, {now - timestamp}s from now: outside {tolerance}s (a replay?)")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [signature(key, timestamp, body) for key in keys]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureInvalid("the signature does not match the body (wrong secret, or the body was altered)")
    return timestamp
