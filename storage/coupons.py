"""Coupon pools: stocked from a CSV of codes or generated from a pattern, each code given to at
most one user, once.

Every function works in the caller's transaction (a SQLAlchemy `Connection`), so the engine can
claim a code in the same transaction as the run's move and the outbox row: if that rolls back,
the code goes back to the pool with it.

How a code is given to one user only: `claim` takes a free code with one statement,
`UPDATE ... WHERE id = (SELECT ... LIMIT 1) RETURNING`. On PostgreSQL the inner select locks
the row `FOR UPDATE SKIP LOCKED`, so concurrent claimers each take a different free code instead
of queueing on the same one; on SQLite the statement holds the database's single write lock.
Each claim carries a key (the engine's `<run id>/<step id>`), unique across codes: claiming
again with the same key returns the code it got the first time.

How many codes one person gets: a pool's `codes_per_user` is "one" (the default) or
"unlimited". In a one-per-user pool, a claim for someone who already holds a code of the pool,
from any run of any journey, returns that code (`reused` is True) instead of drawing another.
Two transactions claiming for the same person at once on PostgreSQL would each see no code
and draw one: there, such claims queue on an advisory lock for (pool, person), and the second
reads the code the first drew. A code drawn in such a pool also records its holder in
`holder_id`, whose unique index with `pool_id` refuses a second code for one person whatever
happens. Unlimited pools pay nothing for this: their claim is the one statement it always
was, and leaves `holder_id` NULL, which never collides.
"""

from __future__ import annotations

import codecs
import csv
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, TypedDict, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    Update,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from .alerts import COUPON_POOL_EMPTY, COUPON_POOL_MISSING, raise_alert
from .tables import CODES_PER_USER, coupon_codes, coupon_pools
from .types import UTCDateTime
from .upserts import upsert_into

IMPORT_BATCH = 1_000  # codes inserted per statement while streaming a CSV
# Pattern characters: '#' a digit, '?' a letter or digit. Letters and digits that read alike
# (0/O, 1/I/L) are left out: codes are typed in by hand at shop counters.
PATTERN_ALPHABETS = {"#": "23456789", "?": "ABCDEFGHJKMNPQRSTUVWXYZ23456789"}
MAX_CODE_LENGTH = 64
GENERATE_HEADROOM = 4  # refuse a pattern with fewer than 4 possible codes per code asked for

# The upload format of the HTTP API, strict where `import_csv` is lenient, so that the OpenAPI
# document can say exactly what is accepted (it uses UPLOAD_PATTERN) and nothing it does not
# describe gets in. A header line comes first: it is what tells a CSV from some other text.
# A code is up to 64 printable characters: no space or other whitespace (which `import_csv`
# would strip), no comma or quote (which CSV would read as syntax), no control character or
# surrogate. The patterns are written so that Python's `re` and ECMA 262 read them alike.
CODE_PATTERN = (r"[!#-+\x2d-~\u00a1-\u167f\u1681-\u1fff\u200b-\u2027\u202a-\u202e\u2030-\u205e\u2060-\u2fff"
                rf"\u3001-\ud7ff\ue000-\ufefe\uff00-\uffff]{{1,{MAX_CODE_LENGTH}}}")
# An instant with its UTC offset, in years 1900 to 9998 (so that it is a time in UTC too), on a
# day that exists: the months' lengths and the leap years are spelled out.
_YEAR = "(?:19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
_LEAP_YEAR = "(?:(?:19|[2-9][0-9])(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)"
_MONTH_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
EXPIRES_AT_PATTERN = (f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9]"
                      r"(?::[0-5][0-9](?:\.[0-9]{1,6})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
UPLOAD_HEADER = "[Cc][Oo][Dd][Ee](?:,[Ee][Xx][Pp][Ii][Rr][Ee][Ss]_[Aa][Tt])?"
UPLOAD_ROW = f"(?:{CODE_PATTERN}(?:,(?:{EXPIRES_AT_PATTERN})?)?)?"
UPLOAD_PATTERN = rf"^\ufeff?{UPLOAD_HEADER}\r?(?:\n{UPLOAD_ROW}\r?)*$"
_HEADER, _ROW = re.compile(UPLOAD_HEADER), re.compile(UPLOAD_ROW)


class CouponError(Exception):
    """Base of coupon storage errors; each says what to change."""


class PoolNotFound(CouponError, LookupError):
    pass


class PoolExists(CouponError):
    pass


class CodesInvalid(CouponError):
    """A CSV row or a pattern is unusable; the message gives the line or the reason."""


CodesPerUser = Literal["one", "unlimited"]
ONE: CodesPerUser = "one"
UNLIMITED: CodesPerUser = "unlimited"
DEFAULT_CODES_PER_USER: CodesPerUser = ONE  # the business case: a person gets one code from a pool
assert (ONE, UNLIMITED) == CODES_PER_USER


class ClaimedCode(TypedDict):
    """What the engine puts in the step's named result (`{{ trial.code }}`)."""

    code: str
    expires_at: str | None  # ISO 8601, or None for a code that never expires
    reused: bool  # True when a one-per-user pool gave back the code this person already held


@dataclass(frozen=True)
class ImportResult:
    added: int
    duplicates: int  # codes already in the pool (or twice in the file), skipped


@dataclass(frozen=True)
class Stock:
    total: int
    issued: int
    redeemed: int
    expired: int  # expired before anyone was given them
    available: int  # what `claim` can still hand out now


@dataclass(frozen=True)
class Pool:
    """A pool as the API and the builder show it: its setting and its stock."""

    name: str
    codes_per_user: CodesPerUser
    stock: Stock


Redemption = Literal["redeemed", "already_redeemed", "unknown_code", "not_issued"]


def create_pool(conn: Connection, name: str, now: datetime,
                codes_per_user: CodesPerUser = DEFAULT_CODES_PER_USER) -> int:
    """A new, empty pool; its id."""
    _check_codes_per_user(codes_per_user)
    if pool_id(conn, name) is not None:
        raise PoolExists(f"coupon pool {name!r} already exists")
    created: int = conn.execute(insert(coupon_pools).values(name=name, created_at=now, codes_per_user=codes_per_user)
                                .returning(coupon_pools.c.id)).scalar_one()
    return created


def set_codes_per_user(conn: Connection, name: str, codes_per_user: CodesPerUser) -> None:
    """Change how many codes one person may hold. Codes already given stay where they are:
    going from unlimited to one, a person holding several gets the first of them from then on."""
    _check_codes_per_user(codes_per_user)
    done = conn.execute(update(coupon_pools).where(coupon_pools.c.name == name)
                        .values(codes_per_user=codes_per_user))
    if done.rowcount != 1:
        raise PoolNotFound(f"no coupon pool named {name!r}")


def _check_codes_per_user(value: str) -> None:
    """Refuse a value the CHECK constraint would, with a message that says what to write."""
    if value not in CODES_PER_USER:
        raise CouponError(f"codes_per_user must be one of {', '.join(CODES_PER_USER)}, not {value!r}")


def pool_id(conn: Connection, name: str) -> int | None:
    found: int | None = conn.execute(select(coupon_pools.c.id).where(coupon_pools.c.name == name)).scalar_one_or_none()
    return found


def _require_pool(conn: Connection, name: str) -> int:
    found = pool_id(conn, name)
    if found is None:
        raise PoolNotFound(f"no coupon pool named {name!r}")
    return found


def import_csv(conn: Connection, pool: str, lines: Iterable[str], default_expires_at: datetime | None = None,
               batch: int = IMPORT_BATCH) -> ImportResult:
    """Add the codes of a CSV stream to `pool`, reading it row by row (a million-code upload is
    never held in memory). Columns: `code`, and optionally `expires_at` (ISO 8601 with offset);
    a first row reading `code` is a header. Blank lines are skipped. A bad row raises
    `CodesInvalid` with its line number; the caller's transaction then adds nothing."""
    target = _require_pool(conn, pool)
    added = seen = 0
    pending: list[dict[str, object]] = []
    reader = csv.reader(lines)
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if reader.line_num == 1 and cells[0].lower() == "code":
                continue
            pending.append(_code_row(cells, reader.line_num, default_expires_at))
            seen += 1
            if len(pending) >= batch:
                added += _insert_codes(conn, target, pending)
                pending = []
    except csv.Error as error:  # a quote left open, a field over csv's size limit, a stray carriage return
        raise CodesInvalid(f"line {reader.line_num}: {error}") from None
    added += _insert_codes(conn, target, pending)
    return ImportResult(added=added, duplicates=seen - added)


def checked_upload(lines: Iterable[str]) -> Iterator[str]:
    """`lines` as they come, each checked against the upload format (UPLOAD_PATTERN): the
    header first, then rows of a code and, optionally, `,expires_at`."""
    number = 0
    for number, line in enumerate(lines, start=1):
        text = line.removesuffix("\n").removesuffix("\r")
        if number == 1 and not _HEADER.fullmatch(text):
            raise CodesInvalid("line 1: the first line must be the header `code` or `code,expires_at`")
        if number > 1 and not _ROW.fullmatch(text):
            raise CodesInvalid(f"line {number}: not a code of 1 to {MAX_CODE_LENGTH} printable characters "
                               "(no space, comma or quote) optionally followed by ,expires_at as "
                               "YYYY-MM-DDTHH:MM[:SS[.ffffff]] and Z or an offset (+08:00), in 1900 to 9998")
        yield line
    if number == 0:
        raise CodesInvalid("the upload is empty: its first line must be the header `code` or `code,expires_at`")


def _code_row(cells: list[str], line: int, default_expires_at: datetime | None) -> dict[str, object]:
    code = cells[0]
    if not code:
        raise CodesInvalid(f"line {line}: the code is empty")
    if len(code) > MAX_CODE_LENGTH:
        raise CodesInvalid(f"line {line}: the code is longer than {MAX_CODE_LENGTH} characters")
    expires_at = default_expires_at
    if len(cells) > 1 and cells[1]:
        try:
            expires_at = datetime.fromisoformat(cells[1])
        except ValueError:
            raise CodesInvalid(f"line {line}: expires_at: {cells[1]!r} is not an ISO 8601 time") from None
        if expires_at.utcoffset() is None:
            raise CodesInvalid(f"line {line}: expires_at: {cells[1]!r} has no UTC offset (add +08:00 or Z)")
        try:
            expires_at.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC, which no datetime holds
            raise CodesInvalid(f"line {line}: expires_at: {cells[1]!r} is out of range in UTC") from None
    return {"code": code, "expires_at": expires_at}


def _insert_codes(conn: Connection, pool: int, rows: list[dict[str, object]]) -> int:
    """Insert `rows` in one statement, skipping codes the pool already has; how many were new."""
    if not rows:
        return 0
    statement = (upsert_into(coupon_codes, conn).values([{"pool_id": pool, **row} for row in rows])
                 .on_conflict_do_nothing(index_elements=["pool_id", "code"]).returning(coupon_codes.c.id))
    return len(conn.execute(statement).all())


def generate(conn: Connection, pool: str, pattern: str, count: int, expires_at: datetime | None = None,
             batch: int = IMPORT_BATCH) -> int:
    """Add `count` new random codes following `pattern` ('#' a digit, '?' a letter or digit,
    anything else itself: "LENS-????-####"). Codes come from `secrets`, so they cannot be
    guessed from one another. Returns `count`; raises `CodesInvalid` if the pattern is too
    small to give that many distinct codes comfortably."""
    target = _require_pool(conn, pool)
    space = 1
    for char in pattern:
        space *= len(PATTERN_ALPHABETS.get(char, "x"))
    if space == 1:
        raise CodesInvalid(f"pattern {pattern!r} has no '#' or '?': every code would be the same")
    if space < count * GENERATE_HEADROOM:
        raise CodesInvalid(f"pattern {pattern!r} allows {space} codes: too few for {count}; make it longer")
    added = 0
    while added < count:
        wanted = min(batch, count - added)
        rows: list[dict[str, object]] = [{"code": _random_code(pattern), "expires_at": expires_at}
                                         for _ in range(wanted)]
        added += _insert_codes(conn, target, rows)  # a collision is skipped, and made up next round
    return added


def _random_code(pattern: str) -> str:
    return "".join(secrets.choice(PATTERN_ALPHABETS[c]) if c in PATTERN_ALPHABETS else c for c in pattern)


def claim(conn: Connection, pool_name: str, profile_id: int, run_id: int | None, key: str,
          now: datetime) -> ClaimedCode | None:
    """Give `profile_id` a free, unexpired code from `pool_name` under idempotency key `key`.

    The same key gets the same code back. In a one-per-user pool, someone who already holds a
    code of the pool gets that one back (`reused`), whatever run or journey it came from. None
    when the pool is dry (or does not exist): an alert is raised, at most once per pool per
    hour, and the journey takes its `else`.

    One statement draws in either kind of pool: it takes a free code when the pool is unlimited
    or the person holds none of it, and records the holder in a one-per-user pool. On SQLite it
    is the claim's first statement, and a write: a transaction that read first cannot take the
    write lock once another writer has committed, so reading the key or the pool first would
    fail under concurrency instead of waiting its turn. On PostgreSQL two transactions claiming
    for one person would each see no code held and both draw: claims for one person in one pool
    queue on a transaction-scoped advisory lock first, so the second sees the code the first
    drew (its statements are new ones, which under READ COMMITTED see what committed while it
    waited). The holder index refuses a second code for a person outright, should anything ever
    skip the lock.

    A lock rather than a SAVEPOINT around the draw, caught on the index's conflict: a savepoint
    that writes is a PostgreSQL subtransaction, and an engine batch issuing coupons to hundreds
    of people would pass the 64 a transaction keeps cheaply, slowing every other session's reads."""
    prepared = _driver_draw(conn.dialect)
    if prepared.lock is not None:
        conn.exec_driver_sql(prepared.lock.sql, prepared.lock.parameters({"b_holder": f"{pool_name}:{profile_id}"}))
    taken = conn.exec_driver_sql(prepared.draw.sql, prepared.draw.parameters({
        "b_pool": pool_name, "b_profile": profile_id, "b_run": run_id, "b_key": key,
        "b_now": prepared.bind_instant(now)})).one_or_none()
    if taken is not None:
        return _claimed(taken[0], prepared.read_instant(taken[1]), reused=False)
    again = conn.execute(select(coupon_codes.c.code, coupon_codes.c.expires_at)
                         .where(coupon_codes.c.claim_key == key)).one_or_none()
    if again is not None:
        return _claimed(again.code, again.expires_at, reused=False)
    setting = conn.execute(select(coupon_pools.c.id, coupon_pools.c.codes_per_user)
                           .where(coupon_pools.c.name == pool_name)).one_or_none()
    if setting is None:
        raise_alert(conn, COUPON_POOL_MISSING, pool_name,
                    f"a journey asked for a code from pool {pool_name!r}, which does not exist", now)
        return None
    if setting.codes_per_user == ONE:
        held = _held(conn, setting.id, profile_id)
        if held is not None:
            return held
    raise_alert(conn, COUPON_POOL_EMPTY, pool_name,
                f"coupon pool {pool_name!r} has no free unexpired code left; journeys take their else branch", now)
    return None


@cache
def _draw(dialect: str) -> Update:
    """`UPDATE ... RETURNING` giving one free code of pool `b_pool` to `b_profile`, provided no
    code carries `b_key` yet and the pool is unlimited or the person holds none of its codes (by
    `profile_id`, or by `holder_id` for a profile merged away). In a one-per-user pool the code
    records its holder. Built once per dialect, with bound parameters: building it (three
    subqueries, two aliases) cost more than running it."""
    codes, pools = coupon_codes.c, coupon_pools.c
    pool_name, profile_id = bindparam("b_pool", type_=String), bindparam("b_profile", type_=BigInteger)
    in_pool = select(pools.id).where(pools.name == pool_name).scalar_subquery()
    one_per_user = select(pools.codes_per_user == ONE).where(pools.name == pool_name).scalar_subquery()
    free = (select(codes.id)
            # No `claim_key IS NULL` here: a claim sets it with profile_id, so it adds nothing, and
            # SQLite would pick that column's unique index and walk every unclaimed code of every
            # pool (a claim took ~0.1 s with 2.7 million codes) instead of this pool's.
            .where(and_(codes.pool_id == in_pool, codes.profile_id.is_(None), codes.redeemed_at.is_(None),
                        or_(codes.expires_at.is_(None), codes.expires_at > bindparam("b_now"))))
            .order_by(codes.id).limit(1))
    if dialect == "postgresql":
        free = free.with_for_update(skip_locked=True)
    earlier, held = coupon_codes.alias("earlier"), coupon_codes.alias("held")
    key_unused = ~exists().where(earlier.c.claim_key == bindparam("b_key"))
    # Two NOT EXISTS rather than one over `profile_id = ? OR holder_id = ?`: with the OR, SQLite
    # searched the holder index by pool only and walked every code of the pool (a claim cost 0.9
    # ms at 4,000 codes, 4.9 ms at 16,000); apart, each is one probe of its own index.
    holds_none = and_(~exists().where(and_(held.c.pool_id == in_pool, held.c.profile_id == profile_id)),
                      ~exists().where(and_(held.c.pool_id == in_pool, held.c.holder_id == profile_id)))
    return (update(coupon_codes).where(and_(codes.id == free.scalar_subquery(), key_unused,
                                            or_(~one_per_user, holds_none)))
            .values(profile_id=profile_id, run_id=bindparam("b_run"), issued_at=bindparam("b_now"),
                    claim_key=bindparam("b_key"), holder_id=case((one_per_user, profile_id), else_=None))
            .returning(codes.code, codes.expires_at))


@dataclass(frozen=True)
class _Prepared:
    """A statement as its driver's SQL text, compiled once, to run through `exec_driver_sql`."""

    sql: str
    order: tuple[str, ...] | None  # the parameters' names in order, for a positional driver
    fixed: dict[str, Any]  # the values the statement carries itself (`"one"`, the LIMIT)

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> _Prepared:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        order = tuple(compiled.positiontup) if dialect.positional and compiled.positiontup else None
        return cls(compiled.string, order, {k: v for k, v in compiled.params.items() if v is not None})

    def parameters(self, given: dict[str, Any]) -> Any:
        values = {**self.fixed, **given}
        return values if self.order is None else tuple(values[name] for name in self.order)


@dataclass(frozen=True)
class _DriverDraw:
    """`_draw`, and on PostgreSQL the holder lock, for one dialect, run through `exec_driver_sql`.
    Why: through SQLAlchemy, computing the big statement's cache key and processing its values
    cost a claim more than the database's work (on SQLite ~100 µs a claim, ~35 of them drawing
    the code). Instants go through `UTCDateTime`'s own processors for the dialect, so what is
    written and read is what SQLAlchemy would have written and read."""

    draw: _Prepared
    lock: _Prepared | None  # takes the (pool, person) advisory lock: parameter `b_holder`
    bind_instant: Callable[[datetime], Any]
    read_instant: Callable[[Any], datetime | None]


_DRIVER_DRAWS: dict[tuple[str, str, str], _DriverDraw] = {}


def _driver_draw(dialect: Dialect) -> _DriverDraw:
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    found = _DRIVER_DRAWS.get(key)
    if found is None:
        instant = UTCDateTime().dialect_impl(dialect)
        bind, read = instant.bind_processor(dialect), instant.result_processor(dialect, None)
        lock = None
        if dialect.name == "postgresql":
            lock = _Prepared.of(select(func.pg_advisory_xact_lock(
                _holder_lock_space(), func.hashtext(bindparam("b_holder", type_=String)))), dialect)
        found = _DRIVER_DRAWS[key] = _DriverDraw(_Prepared.of(_draw(dialect.name), dialect), lock,
                                                 bind or _unchanged, read or _unchanged)
    return found


def _unchanged(value: Any) -> Any:
    return value


def _holder_lock_space() -> ColumnElement[int]:
    """The first key of the holders' advisory locks, named for the schema as the engine's
    partition locks are: installations in separate schemas of one database must not wait on
    each other."""
    return func.hashtext(func.concat(func.current_schema(), ":journeyflow-coupon-holders"))


def _held(conn: Connection, pool: int, profile_id: int) -> ClaimedCode | None:
    """The code of `pool` this person holds, if any: the first given, when a One-ID merge left
    them two. Looked for by holder too: a profile merged away still finds the code it drew."""
    codes = coupon_codes.c
    # A UNION of two lookups, each on its own index, rather than `profile_id = ? OR holder_id = ?`,
    # which SQLite served by the holder index on pool_id alone: every code of the pool, per claim.
    either = union(*(select(codes.code, codes.expires_at, codes.issued_at, codes.id)
                     .where(and_(codes.pool_id == pool, column == profile_id))
                     for column in (codes.profile_id, codes.holder_id))).subquery()
    found = conn.execute(select(either.c.code, either.c.expires_at)
                         .order_by(either.c.issued_at, either.c.id).limit(1)).one_or_none()
    return _claimed(found.code, found.expires_at, reused=True) if found is not None else None


def _claimed(code: str, expires_at: datetime | None, reused: bool) -> ClaimedCode:
    return {"code": code, "expires_at": expires_at.isoformat() if expires_at else None, "reused": reused}


def redeem(conn: Connection, code: str, at: datetime, pool: str | None = None) -> Redemption:
    """Mark an issued code used (a `coupon_redeemed` event). Never raises for a bad code: the
    event may be replayed or come from a till with a typo, and the engine's batch must go on.
    With no `pool`, the code is looked for in every pool (codes are unique in practice)."""
    query = select(coupon_codes.c.id, coupon_codes.c.profile_id, coupon_codes.c.redeemed_at).where(
        coupon_codes.c.code == code)
    if pool is not None:
        query = query.join(coupon_pools, coupon_pools.c.id == coupon_codes.c.pool_id).where(coupon_pools.c.name == pool)
    else:  # every pool named (a handful of rows), so the (pool_id, code) key is probed per pool, not every code scanned
        query = query.where(coupon_codes.c.pool_id.in_(select(coupon_pools.c.id)))
    found = conn.execute(query.order_by(coupon_codes.c.id).limit(1)).one_or_none()
    if found is None:
        return "unknown_code"
    if found.profile_id is None:
        return "not_issued"
    done = conn.execute(update(coupon_codes).where(and_(coupon_codes.c.id == found.id,
                                                        coupon_codes.c.redeemed_at.is_(None)))
                        .values(redeemed_at=at))
    return "redeemed" if done.rowcount == 1 else "already_redeemed"


def stock(conn: Connection, pool: str, now: datetime) -> Stock:
    """How many codes the pool has, and how many of them `claim` could still give out. A code
    given again to the person who holds it (`reused`) is counted once: it is one code issued."""
    found = _stocks(conn, now, coupon_pools.c.id == _require_pool(conn, pool))
    return found[0].stock


def describe(conn: Connection, pool: str, now: datetime) -> Pool:
    """One pool's setting and stock."""
    found = _stocks(conn, now, coupon_pools.c.name == pool)
    if not found:
        raise PoolNotFound(f"no coupon pool named {pool!r}")
    return found[0]


def all_pools(conn: Connection, now: datetime) -> list[Pool]:
    """Every pool by name, with its setting and stock, in one query."""
    return _stocks(conn, now, None)


def _stocks(conn: Connection, now: datetime, which: ColumnElement[bool] | None) -> list[Pool]:
    """The pools `which` selects (all when None), each with its codes counted."""
    codes = coupon_codes.c
    unissued = codes.profile_id.is_(None)
    expired = and_(codes.expires_at.is_not(None), codes.expires_at <= now)

    def count(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.count(codes.id).filter(condition)

    query = (select(coupon_pools.c.name, coupon_pools.c.codes_per_user, func.count(codes.id),
                    count(codes.profile_id.is_not(None)), count(codes.redeemed_at.is_not(None)),
                    count(and_(unissued, expired)), count(and_(unissued, codes.redeemed_at.is_(None), ~expired)))
             .select_from(coupon_pools.outerjoin(coupon_codes, codes.pool_id == coupon_pools.c.id))
             .group_by(coupon_pools.c.id, coupon_pools.c.name, coupon_pools.c.codes_per_user)
             .order_by(coupon_pools.c.name))
    if which is not None:
        query = query.where(which)
    return [Pool(name=row[0], codes_per_user=cast(CodesPerUser, row[1]),
                 stock=Stock(total=row[2], issued=row[3], redeemed=row[4], expired=row[5], available=row[6]))
            for row in conn.execute(query)]


def lines(stream: Iterable[bytes | str], encoding: str = "utf-8-sig") -> Iterator[str]:
    """Text lines from a byte stream (an upload), decoded as they come; a UTF-8 BOM is dropped."""
    decoder = codecs.getincrementaldecoder(encoding)()
    buffer = ""
    number = 0  # lines yielded so far
    try:
        for chunk in stream:
            buffer += decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
            *complete, buffer = buffer.split("\n")
            for line in complete:
                number += 1
                yield line + "\n"
        buffer += decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        at = number + buffer.count("\n") + error.object[:error.start].count(b"\n") + 1
        raise CodesInvalid(f"line {at}: not {encoding.removesuffix('-sig').upper()} text ({error.reason})") from None
    if buffer:
        yield buffer
