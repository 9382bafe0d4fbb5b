"""Who is calling: API keys, presented three ways.

- `Authorization: Bearer <key>`.
- `Authorization: Basic base64(<key>:)`: the key as user name and no password, which is how
  Segment and compatible tools send their write key, so their webhooks work unchanged.
- A signed request, for senders that must not put a key on the wire:
  `Journeyflow-Signature: t=<unix seconds>,k=<key id>,v1=<hex HMAC-SHA256>` over
  `"<t>." + body`. The HMAC key is the key's stored SHA-256 hex digest (see `signing_key`).
  Timestamps further than `signature_tolerance_seconds` from now are refused (stale), and each
  signature is accepted once within that window (replays are refused).

Keys are stored only as SHA-256 digests (`storage.keys`). Write keys may send events; admin
keys may do everything, including management. A key's verdict is cached for
`key_cache_seconds`, so a hot ingest path costs no query per request; revoking a key therefore
takes effect within that time. A valid key is also remembered by the exact `Authorization`
header it came in (until the same moment), so a producer resending the same header thousands
of times a second costs one dictionary lookup, not a header parse, a base64 decode and a hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine
from starlette.requests import Request

from storage import keys
from storage.keys import ApiKey, KeyKind

from .problems import Forbidden, Unauthorized

SIGNATURE_HEADER = "journeyflow-signature"
K = TypeVar("K", str, int)
MAX_KEY_ID = 2**31 - 1  # key ids are 32-bit on PostgreSQL
MAX_CACHED = 10_000  # cache entries per kind before expired ones are dropped (unknown keys are cached too)


def signing_key(secret: str) -> bytes:
    """The HMAC key for signed requests: the SHA-256 hex digest of the API key, which is what
    the server stores. Symmetric signatures need the verifier to hold the secret; deriving it
    this way needs no second column, and whoever can read the keys table could as well read a
    separate signing secret. It can sign requests, but cannot be presented as a bearer key."""
    return keys.key_hash(secret).encode()


def sign(secret: str, key_id: int, timestamp: int, body: bytes) -> str:
    """The header value a sender puts on a signed request (used by tests and clients)."""
    return f"t={timestamp},k={key_id},v1={_mac(signing_key(secret), timestamp, body)}"


def _mac(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Presented:
    """Credentials found on a request, before they are checked."""

    secret: str | None = None  # bearer or basic
    signature: dict[str, str] | None = None  # t, k, v1


def presented(request: Request) -> Presented:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return Presented(secret=value.strip())
    if scheme.lower() == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("the Basic credentials are not valid base64") from None
        if user:
            return Presented(secret=user)
    signed = request.headers.get(SIGNATURE_HEADER)
    if signed:
        parts = dict(p.strip().partition("=")[::2] for p in signed.split(","))
        if not {"t", "k", "v1"} <= parts.keys():
            raise Unauthorized("the signature header needs t=, k= and v1=")
        return Presented(signature=parts)
    raise Unauthorized("send an API key: Authorization: Bearer <key>, HTTP Basic with the key as user name, "
                       "or a Journeyflow-Signature header")


class KeyStore:
    """Looks keys up by secret or id, with a short cache, and remembers recent signatures."""

    def __init__(self, db: Engine, cache_seconds: float, tolerance_seconds: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.tolerance = tolerance_seconds
        self.monotonic = monotonic
        self._by_secret: dict[str, tuple[float, ApiKey | None]] = {}
        self._by_header: dict[str, tuple[float, ApiKey | None]] = {}  # valid keys only
        self._by_id: dict[int, tuple[float, ApiKey | None]] = {}
        self._seen: dict[str, float] = {}  # signature -> when it may be forgotten
        self._lock = threading.Lock()

    def by_header(self, header: str) -> ApiKey | None:
        """The valid key recently presented in exactly this `Authorization` header, if any."""
        cached = self._by_header.get(header)
        if cached is not None and cached[0] > self.monotonic():
            return cached[1]
        return None

    def cached(self, secret: str, header: str | None = None) -> tuple[bool, ApiKey | None]:
        """(known, key) from the cache alone, so the hot path needs no thread or query. A valid
        key is remembered under `header` too, until the same moment as under its secret."""
        cached = self._by_secret.get(keys.key_hash(secret))
        if cached is None or cached[0] <= self.monotonic():
            return False, None
        if header is not None and cached[1] is not None:
            _remember(self._by_header, header, cached, self.monotonic())
        return True, cached[1]

    def by_secret(self, secret: str, header: str | None = None) -> ApiKey | None:
        known, key = self.cached(secret, header)
        if known:
            return key
        digest = keys.key_hash(secret)
        with self.db.connect() as conn:
            found = keys.find(conn, secret)
        entry = (self.monotonic() + self.cache_seconds, found)
        _remember(self._by_secret, digest, entry, self.monotonic())
        if header is not None and found is not None:
            _remember(self._by_header, header, entry, self.monotonic())
        return found

    def by_id(self, key_id: int) -> ApiKey | None:
        cached = self._by_id.get(key_id)
        if cached is not None and cached[0] > self.monotonic():
            return cached[1]
        with self.db.connect() as conn:
            found = keys.get(conn, key_id)
        _remember(self._by_id, key_id, (self.monotonic() + self.cache_seconds, found), self.monotonic())
        return found

    def first_use(self, signature: str) -> bool:
        """True the first time a signature is seen within the tolerance window."""
        now = self.monotonic()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {s: until for s, until in self._seen.items() if until > now}
            if self._seen.get(signature, 0.0) > now:
                return False
            self._seen[signature] = now + 2 * self.tolerance  # the window is two-sided
            return True


def _remember(cache: dict[K, tuple[float, ApiKey | None]], name: K, entry: tuple[float, ApiKey | None],
              now: float) -> None:
    """Cache `entry`; past MAX_CACHED entries, drop the expired ones first, so that a stream of
    made-up keys cannot grow the cache without bound."""
    if len(cache) >= MAX_CACHED:
        for stale in [k for k, (until, _) in cache.items() if until <= now]:
            del cache[stale]
    cache[name] = entry


def check_kind(key: ApiKey, need: KeyKind) -> ApiKey:
    """Admin keys may do anything; write keys may only send events."""
    if need == "admin" and key.kind != "admin":
        raise Forbidden("this route needs an admin key; a write key may only send events")
    return key


def verdict(key: ApiKey | None, need: KeyKind) -> ApiKey:
    """The key, if it may call a route that needs `need`."""
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    return check_kind(key, need)


def by_signature(store: KeyStore, parts: dict[str, str], body: bytes, now: float, need: KeyKind) -> ApiKey:
    """Verify a signed request; `now` is the clock's time in unix seconds."""
    try:
        timestamp, key_id = int(parts["t"]), int(parts["k"])
    except ValueError:
        raise Unauthorized("the signature's t= and k= must be integers") from None
    if not 0 < key_id <= MAX_KEY_ID:  # no such key; and past 64 bits SQLite cannot even compare it
        raise Unauthorized("the signature does not match (or the key is unknown or revoked)")
    if abs(now - timestamp) > store.tolerance:
        raise Unauthorized(f"the signature's timestamp is more than {store.tolerance}s from now; sign afresh")
    key = store.by_id(key_id)
    expected = _mac(key.hash.encode(), timestamp, body) if key is not None else ""
    # compare_digest takes the same time wherever the strings differ: no timing oracle.
    if key is None or not hmac.compare_digest(expected.encode(), parts["v1"].encode()):
        raise Unauthorized("the signature does not match (or the key is unknown or revoked)")
    if not store.first_use(parts["v1"]):
        raise Unauthorized("this signature was used already; sign each request afresh")
    return check_kind(key, need)
