"""`coupons.claim` against a model of what it promises, on random sequences of claims, on both
backends. The claim's statement was rewritten for speed (issue 18: the holder check as two
`NOT EXISTS`, each on its own index, instead of one over `profile_id = ? OR holder_id = ?`), so
its rules are pinned here as a whole rather than case by case: the same key gets the same code;
in a one-per-user pool a holder gets their first code back (`reused`) and nobody holds two; a
code is never given to two claims; codes go out in id order until the pool is dry."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, select

from storage import coupons
from storage.tables import coupon_codes, coupon_pools, profiles

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
STOCK = 4  # codes per pool: small, so that pools run dry within an example
_names = itertools.count()

# A claim: (pool: 0 one-per-user / 1 unlimited, person 0-2, which of the person's keys 0-2).
claims = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=25)


def _setup(conn: Connection) -> tuple[list[str], list[int]]:
    n = next(_names)
    pools = [f"MODEL_ONE_{n}", f"MODEL_MANY_{n}"]
    coupons.create_pool(conn, pools[0], NOW, coupons.ONE)
    coupons.create_pool(conn, pools[1], NOW, coupons.UNLIMITED)
    for pool in pools:
        coupons.import_csv(conn, pool, (f"{pool}-{i}\n" for i in range(STOCK)),
                           default_expires_at=NOW + timedelta(days=30))
    people = [conn.execute(insert(profiles).values(created_at=NOW, updated_at=NOW).returning(profiles.c.id))
              .scalar_one() for _ in range(3)]
    return pools, people


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=claims, split=st.integers(1, 25))
def test_claims_follow_the_model(db: Engine, sequence: list[tuple[int, int, int]], split: int) -> None:
    """The sequence runs in two transactions (cut at `split`), so the rules hold across commits
    as well as within one transaction."""
    with db.begin() as conn:
        pools, people = _setup(conn)
    by_key: dict[str, str] = {}  # key -> the code it got
    held: dict[tuple[int, int], str] = {}  # (pool, person) -> first code, one-per-user pool only
    free = {pool: [f"{pools[pool]}-{i}" for i in range(STOCK)] for pool in (0, 1)}
    given_out: list[str] = []  # every code drawn anew, in order
    for part in (sequence[:split], sequence[split:]):
        with db.begin() as conn:
            for pool, person, n in part:
                key = f"{pools[pool]}/{person}/{n}"
                got = coupons.claim(conn, pools[pool], people[person], None, key, NOW)
                if key in by_key:
                    expected: tuple[str, bool] | None = (by_key[key], False)
                elif pool == 0 and (pool, person) in held:
                    expected = (held[(pool, person)], True)
                elif free[pool]:
                    code = free[pool].pop(0)
                    by_key[key] = code
                    given_out.append(code)
                    if pool == 0:
                        held[(pool, person)] = code
                    expected = (code, False)
                else:
                    expected = None
                assert (None if got is None else (got["code"], got["reused"])) == expected, (pool, person, key)
    assert len(given_out) == len(set(given_out)), "a code was given twice"
    with db.connect() as conn:
        stored = conn.execute(select(coupon_codes.c.code, coupon_codes.c.claim_key, coupon_codes.c.holder_id)
                              .join(coupon_pools, coupon_pools.c.id == coupon_codes.c.pool_id)
                              .where(coupon_pools.c.name.in_(pools), coupon_codes.c.profile_id.is_not(None))).all()
    assert sorted(r.code for r in stored) == sorted(given_out)
    assert {r.claim_key: r.code for r in stored} == by_key
    holders = [r.holder_id for r in stored if r.code.startswith(pools[0])]
    assert len(holders) == len(set(holders)), "someone holds two codes of a one-per-user pool"
