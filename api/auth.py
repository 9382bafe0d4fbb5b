"""Who is calling: API keys, presented three ways.

- `Authorization: Bearer <key>`.
- `Authorization: Basic base64(<key>:)`: the key as user name (any password is ignored), which
  is how Segment and compatible tools send their write key, so their webhooks work unchanged.
- A signed request, for senders that must not put a key on the wire:
  `Journeyflow-Signature: t=<unix seconds>,k=<key id>,v2=<hex HMAC-SHA256>` over

      <t> LF <METHOD> LF <path> LF <query> LF <body>

  keyed with the key's stored SHA-256 hex digest (see `signing_key`). Each part is there so
  that a captured signature is good for one request only:
  - `t`, the time of signing: timestamps further than `signature_tolerance_seconds` from now
    are refused (stale), which bounds how long a signature must be remembered to refuse it twice.
  - the method, as sent: `GET /v1/journeys/x` and `DELETE /v1/journeys/x` both have empty
    bodies; without it, a signed read would be a signed delete.
  - the path, exactly as sent (percent-encoding kept, ASGI `raw_path`): without it, a body
    signed for `/v1/track` would be accepted by `/v1/identify`, and an empty body signed for one
    journey's `pause` by every other journey's `publish`.
  - the raw query string (without `?`, empty if none), byte for byte: routes read parameters
    from it, and parsing it first would let `?a=1&a=2` or a re-encoding pass for another query.
  - the body, the exact bytes sent (last: it may contain anything).
  The separators are unambiguous: `t` is digits, the method a token, and the path and query
  come off the request line, which cannot hold a line feed. Each signature is accepted once
  (`storage.signature_replays`, in the database, so every server process refuses what another
  accepted). The older `v1=` covered only `"<t>." + body`; it is refused with a 401 that says
  how to sign v2 rather than reinterpreted, since accepting it anywhere keeps its hole open.

Every credential header is parsed strictly, and anything else is a 401 saying what is wrong:
Bearer takes one token of the key alphabet; Basic, base64 (bounded) of UTF-8 `<key>:<anything>`;
the signature header exactly `t`, `k` and `v2` once each, `t` and `k` ASCII digits of bounded
length (`int()` alone would take "+1", " 1", "1_000" and "١"), `v2` 64 lower-case hex digits.
Sending `Authorization` twice (or the signature header twice) is refused: which one is meant?
When both an `Authorization` and a signature header are sent, `Authorization` is used.

Keys are stored only as SHA-256 digests (`storage.keys`). Write keys may send events; admin
keys may do everything, including management. A key's verdict is cached for
`key_cache_seconds`, so a hot ingest path costs no query per request; revoking a key therefore
takes effect within that time. A valid key is also remembered by the exact `Authorization`
header it came in (until the same moment), so a producer resending the same header thousands
of times a second costs one dictionary lookup, not a header parse, a base64 decode and a hash.

Each cache (by secret, by header, by key id) holds at most `max_cached` verdicts for valid keys
and, apart, at most `max_cached` for unknown ones, each part evicting its least recently used
entry when full, fresh or not. Keeping the parts apart is the choice: a flood of made-up keys
(each one new, so each costs its query whatever the cache does) only pushes out other made-up
keys, never a producer's valid key, whose requests stay free of queries under the flood. A
misconfigured producer repeating one wrong key stays cached, being recently used. Valid keys
are few (people create them), so their part does not fill in practice; the header cache can
grow through one valid key sent with many Basic passwords, which only a key's holder can do,
and its bound evicts only such headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from urllib.parse import quote

from sqlalchemy import Engine
from starlette.requests import Request

from storage import keys, signature_replays
from storage.database import writer
from storage.keys import ApiKey, KeyKind

from .problems import Forbidden, Unauthorized

SIGNATURE_HEADER = "journeyflow-signature"
K = TypeVar("K", str, int)
MAX_KEY_ID = 2**31 - 1  # key ids are 32-bit on PostgreSQL
MAX_CACHED = 10_000  # verdicts per cache for valid keys, and as many again for unknown ones
MAX_SECRET_LENGTH = 128  # a key is 52 characters (storage.keys.new_key); room to grow, not to flood
MAX_BASIC_LENGTH = 1_024  # the base64 of "<key>:<password>"
MAX_AUTHORIZATION_LENGTH = 6 + MAX_BASIC_LENGTH  # "Basic " and it; a Bearer header is shorter
MAX_SIGNATURE_LENGTH = 256  # t=, k=, v2= and their values are under 100 characters
MAX_TIMESTAMP_DIGITS = 15  # unix seconds far past any clock (but no 5,000-digit int() per request)
MAX_KEY_ID_DIGITS = len(str(MAX_KEY_ID))

_AUTHORIZATION = re.compile(r"([A-Za-z]+) +([!-~]+) *")  # scheme, one run of visible ASCII
_KEY = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_SECRET_LENGTH}}}")  # storage.keys.new_key: jf_, kind, urlsafe base64
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_NAME = re.compile(r"[A-Za-z0-9]{1,16}")
_TIMESTAMP = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")
_KEY_ID = re.compile(rf"[0-9]{{1,{MAX_KEY_ID_DIGITS}}}")
_MAC = re.compile(r"[0-9a-f]{64}")
SIGN_V2 = ('sign with v2= instead: HMAC-SHA256, keyed with the hex SHA-256 of the API key, over '
           '"<t>\\n<METHOD>\\n<path>\\n<query>\\n" + body (api.auth.sign; see docs/api.md)')
NO_CREDENTIALS = ("send an API key: Authorization: Bearer <key>, HTTP Basic with the key as user name, "
                  "or a Journeyflow-Signature header")


def signing_key(secret: str) -> bytes:
    """The HMAC key for signed requests: the SHA-256 hex digest of the API key, which is what
    the server stores. Symmetric signatures need the verifier to hold the secret; deriving it
    this way needs no second column, and whoever can read the keys table could as well read a
    separate signing secret. It can sign requests, but cannot be presented as a bearer key."""
    return keys.key_hash(secret).encode()


def canonical(timestamp: int, method: str, path: bytes, query: bytes, body: bytes) -> bytes:
    """What a v2 signature covers (the module docstring says why each part is there)."""
    return b"%d\n%s\n%s\n%s\n" % (timestamp, method.encode("utf-8", "backslashreplace"), path, query) + body


def sign(secret: str, key_id: int, timestamp: int, body: bytes, *, method: str, path: str, query: str = "") -> str:
    """The header value a sender puts on a signed request (used by tests and clients). `path`
    and `query` exactly as they go on the wire: percent-encoded, the query without its `?`."""
    for name, value in (("path", path), ("query", query)):
        if not value.isascii() or any(c.isspace() for c in value):
            raise ValueError(f"{name} must be percent-encoded, as sent on the wire: {value!r}")
    if not path.startswith("/") or "?" in path:
        raise ValueError(f"path must start with / and hold no query (pass query= apart): {path!r}")
    message = canonical(timestamp, method.upper(), path.encode(), query.encode(), body)
    return f"t={timestamp},k={key_id},v2={_mac(signing_key(secret), message)}"


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A well-formed signature header, with what it claims to cover besides the body."""

    timestamp: int
    key_id: int
    mac: str  # 64 lower-case hex digits
    method: str
    path: bytes
    query: bytes


@dataclass(frozen=True)
class Presented:
    """Credentials found on a request, before they are checked."""

    secret: str | None = None  # bearer or basic
    signature: Signed | None = None


def authorization(request: Request) -> str | None:
    """The request's one `Authorization` header, if it has one."""
    return _single(request, "authorization", "Authorization")


def _single(request: Request, name: str, shown: str) -> str | None:
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise Unauthorized(f"send one {shown} header, not {len(values)}")
    return values[0] if values else None


def presented(request: Request) -> Presented:
    header = authorization(request)
    if header is not None:
        return Presented(secret=secret_of(header))
    signed = _single(request, SIGNATURE_HEADER, "Journeyflow-Signature")
    if signed is not None:
        return Presented(signature=signature_of(signed, request))
    raise Unauthorized(NO_CREDENTIALS)


def secret_of(header: str) -> str:
    """The API key in an `Authorization` header value, or a 401 saying what is wrong with it."""
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        raise Unauthorized(f"the Authorization header is longer than {MAX_AUTHORIZATION_LENGTH} characters")
    match = _AUTHORIZATION.fullmatch(header)
    if match is None:
        raise Unauthorized("the Authorization header must be 'Bearer <key>' or 'Basic <base64 of key:>'")
    scheme, value = match[1].lower(), match[2]
    if scheme == "bearer":
        if _KEY.fullmatch(value) is None:
            raise Unauthorized(f"the Bearer token is not an API key: up to {MAX_SECRET_LENGTH} letters, digits, "
                               "_ and -")
        return value
    if scheme == "basic":
        return _basic_user(value)
    raise Unauthorized(f"the Authorization scheme {match[1][:20]!r} is not accepted: use Bearer or Basic")


def _basic_user(value: str) -> str:
    if _BASE64.fullmatch(value) is None:  # not too long: secret_of bounded the whole header
        raise Unauthorized("the Basic credentials are not valid base64")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not valid base64 of UTF-8 text") from None
    user, colon, _ = decoded.partition(":")
    if not colon:
        raise Unauthorized("the Basic credentials must be base64 of '<key>:' (the key as user name)")
    if _KEY.fullmatch(user) is None:
        raise Unauthorized("the Basic user name must be the API key")
    return user


def signature_of(header: str, request: Request) -> Signed:
    """The signature header's parts, for `request`, or a 401 saying what is wrong with them."""
    if len(header) > MAX_SIGNATURE_LENGTH:
        raise Unauthorized(f"the signature header is longer than {MAX_SIGNATURE_LENGTH} characters")
    parts: dict[str, str] = {}
    for part in header.split(","):
        name, equals, value = part.strip(" \t").partition("=")  # no regex over the value: linear
        if not equals or _NAME.fullmatch(name) is None:
            raise Unauthorized("the signature header must be t=<unix seconds>,k=<key id>,v2=<hex>")
        if name == "v1":
            raise Unauthorized(f"v1 signatures (timestamp and body only) are no longer accepted: {SIGN_V2}")
        if name not in ("t", "k", "v2"):
            raise Unauthorized(f"the signature header has an unknown part {name}=; it takes t=, k= and v2=")
        if name in parts:
            raise Unauthorized(f"the signature header has {name}= more than once")
        parts[name] = value
    if parts.keys() != {"t", "k", "v2"}:
        raise Unauthorized("the signature header needs t=, k= and v2=")
    if _TIMESTAMP.fullmatch(parts["t"]) is None:
        raise Unauthorized(f"the signature's t= must be unix seconds, at most {MAX_TIMESTAMP_DIGITS} ASCII digits")
    if _KEY_ID.fullmatch(parts["k"]) is None or not 0 < int(parts["k"]) <= MAX_KEY_ID:
        raise Unauthorized(f"the signature's k= must be a key id, a whole number from 1 to {MAX_KEY_ID}")
    if _MAC.fullmatch(parts["v2"]) is None:
        raise Unauthorized("the signature's v2= must be 64 lower-case hex digits (HMAC-SHA256)")
    raw_path = request.scope.get("raw_path")
    path = raw_path if isinstance(raw_path, bytes) else quote(request.url.path).encode()
    return Signed(int(parts["t"]), int(parts["k"]), parts["v2"], request.method, path,
                  request.scope.get("query_string", b""))


Entry = tuple[float, ApiKey | None]  # (monotonic deadline, the key or None for "no such key")


class Verdicts(Generic[K]):
    """Cached verdicts, least recently used first, at most `size` for valid keys and `size`
    for unknown ones, kept apart (the module docstring says why). Shared by the event loop's
    thread and the worker threads that query, hence the lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._valid: OrderedDict[K, Entry] = OrderedDict()
        self._unknown: OrderedDict[K, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: K, now: float) -> Entry | None:
        with self._lock:
            for part in (self._valid, self._unknown):
                entry = part.get(name)
                if entry is None:
                    continue
                if entry[0] <= now:
                    del part[name]
                    return None
                part.move_to_end(name)
                return entry
            return None

    def put(self, name: K, entry: Entry) -> None:
        with self._lock:
            part, other = (self._valid, self._unknown) if entry[1] is not None else (self._unknown, self._valid)
            other.pop(name, None)
            part[name] = entry
            part.move_to_end(name)
            while len(part) > self.size:
                part.popitem(last=False)

    def sizes(self) -> tuple[int, int]:
        """(valid, unknown) entries held."""
        return len(self._valid), len(self._unknown)


class KeyStore:
    """Looks keys up by secret or id, with short, bounded caches, and records used signatures."""

    def __init__(self, db: Engine, cache_seconds: float, tolerance_seconds: int,
                 monotonic: Callable[[], float] = time.monotonic, max_cached: int = MAX_CACHED) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.tolerance = tolerance_seconds
        self.monotonic = monotonic
        self._by_secret: Verdicts[str] = Verdicts(max_cached)  # by the secret's digest
        self._by_header: Verdicts[str] = Verdicts(max_cached)  # valid keys only
        self._by_id: Verdicts[int] = Verdicts(max_cached)

    def by_header(self, header: str) -> ApiKey | None:
        """The valid key recently presented in exactly this `Authorization` header, if any."""
        cached = self._by_header.get(header, self.monotonic())
        return cached[1] if cached is not None else None

    def cached(self, secret: str, header: str | None = None) -> tuple[bool, ApiKey | None]:
        """(known, key) from the cache alone, so the hot path needs no thread or query. A valid
        key is remembered under `header` too, until the same moment as under its secret."""
        cached = self._by_secret.get(keys.key_hash(secret), self.monotonic())
        if cached is None:
            return False, None
        if header is not None and cached[1] is not None:
            self._by_header.put(header, cached)
        return True, cached[1]

    def by_secret(self, secret: str, header: str | None = None) -> ApiKey | None:
        known, key = self.cached(secret, header)
        if known:
            return key
        with self.db.connect() as conn:
            found = keys.find(conn, secret)
        entry = (self.monotonic() + self.cache_seconds, found)
        self._by_secret.put(keys.key_hash(secret), entry)
        if header is not None and found is not None:
            self._by_header.put(header, entry)
        return found

    def by_id(self, key_id: int) -> ApiKey | None:
        cached = self._by_id.get(key_id, self.monotonic())
        if cached is not None:
            return cached[1]
        with self.db.connect() as conn:
            found = keys.get(conn, key_id)
        self._by_id.put(key_id, (self.monotonic() + self.cache_seconds, found))
        return found

    def first_use(self, mac: str, timestamp: int, now: float) -> bool:
        """True the first time a signature is seen, by any process on this database. It is
        remembered until `2 * tolerance` after its timestamp: this server accepts it up to one
        tolerance after, and the margin covers servers whose clocks lag this one's by as much."""
        expires_at = datetime.fromtimestamp(timestamp + 2 * self.tolerance, UTC)
        with writer(self.db).begin() as conn:
            return signature_replays.first_use(conn, mac, expires_at, datetime.fromtimestamp(now, UTC))


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


def by_signature(store: KeyStore, signed: Signed, body: bytes, now: float, need: KeyKind) -> ApiKey:
    """Verify a signed request; `now` is the clock's time in unix seconds. The signature is
    recorded only once it matches and its key may call the route, so nothing unauthenticated
    writes a row."""
    if abs(now - signed.timestamp) > store.tolerance:
        raise Unauthorized(f"the signature's timestamp is more than {store.tolerance}s from now; sign afresh")
    key = store.by_id(signed.key_id)
    message = canonical(signed.timestamp, signed.method, signed.path, signed.query, body)
    expected = _mac(key.hash.encode(), message) if key is not None else "0" * 64
    # compare_digest takes the same time wherever the strings differ: no timing oracle. Both
    # are ASCII (the header's v2= was checked to be hex), which compare_digest needs of a str.
    if not hmac.compare_digest(expected, signed.mac) or key is None:
        raise Unauthorized("the signature does not match this method, path, query and body "
                           "(or the key is unknown or revoked)")
    check_kind(key, need)
    if not store.first_use(signed.mac, signed.timestamp, now):
        raise Unauthorized("this signature was used already; sign each request afresh")
    return key
