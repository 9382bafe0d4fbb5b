"""One code per person per pool, on both backends: a one-per-user pool gives the code a person
holds back to them (from any run of any journey), even when two transactions claim for them at
once; an unlimited pool draws anew each time; a One-ID merge that leaves a person two codes
breaks nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, and_, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from engine.identity import merge
from storage import coupons, migrate
from storage.database import alembic_config
from storage.tables import coupon_codes, coupon_pools, journey_runs, journey_versions, journeys, profiles

from .racing import race

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
LOCK_WAIT_SECONDS = 10  # how long the race test waits for the second claim to block on the first


def add_profile(conn: Connection) -> int:
    profile_id: int = conn.execute(insert(profiles).values(created_at=NOW, updated_at=NOW)
                                   .returning(profiles.c.id)).scalar_one()
    return profile_id


def add_run(conn: Connection, profile_id: int, slug: str) -> int:
    """A waiting run of a journey of its own (created on first use): the run id a claim names."""
    journey_id = conn.execute(select(journeys.c.id).where(journeys.c.slug == slug)).scalar_one_or_none()
    if journey_id is None:
        journey_id = conn.execute(insert(journeys).values(slug=slug, name=slug, created_at=NOW, updated_at=NOW)
                                  .returning(journeys.c.id)).scalar_one()
        conn.execute(insert(journey_versions).values(journey_id=journey_id, version=1, source="", graph={},
                                                     created_at=NOW))
    version_id = conn.execute(select(journey_versions.c.id).where(journey_versions.c.journey_id == journey_id)
                              ).scalar_one()
    run_id: int = conn.execute(insert(journey_runs).values(
        profile_id=profile_id, journey_id=journey_id, version_id=version_id, state="completed", entered_at=NOW,
        updated_at=NOW).returning(journey_runs.c.id)).scalar_one()
    return run_id


def stocked(db: Engine, pool: str, count: int, codes_per_user: coupons.CodesPerUser | None = None) -> None:
    """A pool of `count` codes `<pool>-0`, `<pool>-1`...; its setting left to the default when None."""
    with db.begin() as conn:
        if codes_per_user is None:
            coupons.create_pool(conn, pool, NOW)
        else:
            coupons.create_pool(conn, pool, NOW, codes_per_user)
        coupons.import_csv(conn, pool, (f"{pool}-{i}\n" for i in range(count)),
                           default_expires_at=NOW + timedelta(days=30))


def claim(db: Engine, pool: str, profile_id: int, key: str, run_id: int | None = None) -> coupons.ClaimedCode | None:
    with db.begin() as conn:
        return coupons.claim(conn, pool, profile_id, run_id, key, NOW)


def codes_of(db: Engine, profile_id: int) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(select(coupon_codes.c.code).where(coupon_codes.c.profile_id == profile_id)
                                 .order_by(coupon_codes.c.id)).scalars())


def stock(db: Engine, pool: str) -> coupons.Stock:
    with db.connect() as conn:
        return coupons.stock(conn, pool, NOW)


# --------------------------------------------------------------------------- the setting


def test_a_new_pool_gives_one_code_per_user_and_the_setting_can_change(db: Engine) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "LENS", NOW)
        coupons.create_pool(conn, "GIFT", NOW, "unlimited")
        assert [(p.name, p.codes_per_user) for p in coupons.all_pools(conn, NOW)] == [
            ("GIFT", "unlimited"), ("LENS", "one")]
        coupons.set_codes_per_user(conn, "LENS", "unlimited")
        assert coupons.describe(conn, "LENS", NOW).codes_per_user == "unlimited"
        with pytest.raises(coupons.PoolNotFound):
            coupons.set_codes_per_user(conn, "NOPE", "one")
        with pytest.raises(coupons.PoolNotFound):
            coupons.describe(conn, "NOPE", NOW)
        with pytest.raises(coupons.CouponError, match="codes_per_user must be one of one, unlimited"):
            coupons.set_codes_per_user(conn, "LENS", "two")  # type: ignore[arg-type]


def test_a_pool_that_existed_before_the_setting_is_one_per_user(db: Engine) -> None:
    """Pools written without the column (as before migration 0008) get the database's default."""
    with db.begin() as conn:
        conn.execute(text("INSERT INTO coupon_pools (name, created_at) VALUES ('OLD', :now)"), {"now": NOW})
        assert coupons.describe(conn, "OLD", NOW).codes_per_user == "one"


def test_the_migration_makes_existing_pools_one_per_user_and_their_codes_count(empty_db: Engine) -> None:
    """Upgrading a database with pools and issued codes (migration 0007): every pool is then
    one-per-user, a person who already had a code gets it back, and the way down works."""
    with empty_db.begin() as conn:
        command.upgrade(alembic_config(conn), "0007")
        lin = add_profile(conn)
        pool = conn.execute(insert(coupon_pools).values(name="OLD", created_at=NOW)
                            .returning(coupon_pools.c.id)).scalar_one()
        conn.execute(insert(coupon_codes), [
            {"pool_id": pool, "code": "OLD-1", "profile_id": lin, "issued_at": NOW, "claim_key": "1/c"},
            {"pool_id": pool, "code": "OLD-2", "profile_id": lin, "issued_at": NOW + timedelta(hours=1),
             "claim_key": "2/c"},
            {"pool_id": pool, "code": "OLD-3", "profile_id": None, "issued_at": None, "claim_key": None}])
    migrate(empty_db)
    with empty_db.begin() as conn:
        assert coupons.describe(conn, "OLD", NOW).codes_per_user == "one"
        assert coupons.claim(conn, "OLD", lin, None, "3/c", NOW) == {"code": "OLD-1", "expires_at": None,
                                                                      "reused": True}
        assert coupons.stock(conn, "OLD", NOW) == coupons.Stock(total=3, issued=2, redeemed=0, expired=0,
                                                                available=1)
    with empty_db.begin() as conn:
        command.downgrade(alembic_config(conn), "0007")
    migrate(empty_db)
    with empty_db.connect() as conn:
        assert coupons.describe(conn, "OLD", NOW).codes_per_user == "one"


# --------------------------------------------------------------------------- claiming


def test_one_per_user_gives_the_same_code_across_runs_and_journeys(db: Engine) -> None:
    stocked(db, "LENS", 5)
    with db.begin() as conn:
        lin, wang = add_profile(conn), add_profile(conn)
        first_run, re_entry, other_journey = (add_run(conn, lin, "cross_sell"), add_run(conn, lin, "cross_sell"),
                                              add_run(conn, lin, "win_back"))
    first = claim(db, "LENS", lin, f"{first_run}/coupon", first_run)
    again = claim(db, "LENS", lin, f"{re_entry}/coupon", re_entry)
    elsewhere = claim(db, "LENS", lin, f"{other_journey}/offer", other_journey)
    someone_else = claim(db, "LENS", wang, "w/coupon")
    expires = (NOW + timedelta(days=30)).isoformat()
    assert first == {"code": "LENS-0", "expires_at": expires, "reused": False}
    assert again == elsewhere == {"code": "LENS-0", "expires_at": expires, "reused": True}
    assert someone_else == {"code": "LENS-1", "expires_at": expires, "reused": False}
    assert codes_of(db, lin) == ["LENS-0"]
    assert stock(db, "LENS") == coupons.Stock(total=5, issued=2, redeemed=0, expired=0, available=3)


def test_one_per_user_gives_the_code_back_even_once_redeemed(db: Engine) -> None:
    stocked(db, "LENS", 3)
    with db.begin() as conn:
        lin = add_profile(conn)
    assert (claimed := claim(db, "LENS", lin, "1/c")) is not None
    with db.begin() as conn:
        assert coupons.redeem(conn, claimed["code"], NOW) == "redeemed"
    assert claim(db, "LENS", lin, "2/c") == {**claimed, "reused": True}
    assert stock(db, "LENS").issued == 1


def test_unlimited_draws_a_new_code_each_time(db: Engine) -> None:
    stocked(db, "GIFT", 3, "unlimited")
    with db.begin() as conn:
        lin = add_profile(conn)
    got = [claim(db, "GIFT", lin, f"{n}/gift") for n in range(4)]
    assert [c and (c["code"], c["reused"]) for c in got] == [("GIFT-0", False), ("GIFT-1", False),
                                                             ("GIFT-2", False), None]
    assert stock(db, "GIFT") == coupons.Stock(total=3, issued=3, redeemed=0, expired=0, available=0)


@pytest.mark.parametrize("codes_per_user", ["one", "unlimited"])
def test_the_same_key_gets_the_same_code(db: Engine, codes_per_user: coupons.CodesPerUser) -> None:
    stocked(db, "P", 3, codes_per_user)
    with db.begin() as conn:
        lin = add_profile(conn)
    first = claim(db, "P", lin, "7/coupon")
    with db.begin() as conn:  # in one transaction too, as a retried step would
        again = coupons.claim(conn, "P", lin, None, "7/coupon", NOW + timedelta(hours=1))
        third = coupons.claim(conn, "P", lin, None, "7/coupon", NOW + timedelta(hours=2))
    assert first is not None and first["code"] == "P-0"
    assert first == again == third
    assert stock(db, "P").issued == 1


def test_switching_to_one_per_user_gives_the_first_of_several_codes(db: Engine) -> None:
    stocked(db, "P", 4, "unlimited")
    with db.begin() as conn:
        lin = add_profile(conn)
    claim(db, "P", lin, "1/c")
    claim(db, "P", lin, "2/c")
    with db.begin() as conn:
        coupons.set_codes_per_user(conn, "P", "one")
    assert claim(db, "P", lin, "3/c") == {"code": "P-0", "expires_at": (NOW + timedelta(days=30)).isoformat(),
                                          "reused": True}
    assert stock(db, "P").issued == 2


def test_a_dry_one_per_user_pool_still_gives_holders_their_code(db: Engine) -> None:
    stocked(db, "P", 1)
    with db.begin() as conn:
        lin, wang = add_profile(conn), add_profile(conn)
    assert claim(db, "P", lin, "1/c") is not None
    assert claim(db, "P", wang, "2/c") is None  # dry for a newcomer
    reused = claim(db, "P", lin, "3/c")
    assert reused is not None and reused["reused"] is True


# --------------------------------------------------------------------------- concurrency


def test_two_transactions_claiming_for_one_person_at_once_give_one_code(db: Engine) -> None:
    """A real race, on PostgreSQL: the first transaction draws a code and stays open while the
    second claims for the same person (it cannot see the first's code yet) and is seen waiting
    on a lock the first holds; only then does the first commit. The second must end with the first's code,
    reused, and the person with one code. (SQLite has one writer: the second waits its turn.)"""
    if db.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: there is no overlap to race")
    stocked(db, "RACE", 10)
    with db.begin() as conn:
        lin = add_profile(conn)
    drawn = threading.Barrier(2)
    release = threading.Event()
    results: dict[str, coupons.ClaimedCode | None] = {}
    failures: list[BaseException] = []
    second_pid: list[int] = []

    def first() -> None:
        try:
            with db.begin() as conn:
                results["first"] = coupons.claim(conn, "RACE", lin, None, "1/coupon", NOW)
                drawn.wait()
                release.wait(LOCK_WAIT_SECONDS * 2)
        except BaseException as error:
            failures.append(error)
            drawn.abort()

    def second() -> None:
        try:
            with db.begin() as conn:
                second_pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                drawn.wait()
                results["second"] = coupons.claim(conn, "RACE", lin, None, "2/coupon", NOW)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    blocked = _wait_until_blocked(db, second_pid)
    release.set()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert blocked, "the second claim never waited on the first: there was no race"
    assert results["first"] is not None and results["first"]["reused"] is False
    assert results["second"] == {**results["first"], "reused": True}
    assert codes_of(db, lin) == [results["first"]["code"]]
    assert stock(db, "RACE").issued == 1


def test_the_holder_index_refuses_a_second_code_for_one_person(db: Engine) -> None:
    """The backstop under the claim: whatever writes the rows, one holder per pool; NULLs, in
    unlimited pools and for codes issued before the setting existed, never collide."""
    stocked(db, "P", 4)
    with db.begin() as conn:
        lin = add_profile(conn)
        pool = coupons.pool_id(conn, "P")
        held = coupon_codes.update().where(coupon_codes.c.code == "P-0").values(holder_id=lin)
        conn.execute(held)
        with pytest.raises(IntegrityError), conn.begin_nested():
            conn.execute(coupon_codes.update().where(coupon_codes.c.code == "P-1").values(holder_id=lin))
        assert conn.scalar(select(func.count()).select_from(coupon_codes).where(and_(
            coupon_codes.c.pool_id == pool, coupon_codes.c.holder_id.is_(None)))) == 3


def _wait_until_blocked(db: Engine, pid: list[int]) -> bool:
    """True once the backend `pid` (filled in by its thread) waits on a lock."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    with db.connect() as monitor:
        while time.monotonic() < deadline:
            if pid:
                waiting = monitor.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                          {"pid": pid[0]}).scalar_one_or_none()
                monitor.rollback()  # a fresh snapshot of pg_stat_activity each time
                if waiting == "Lock":
                    return True
            time.sleep(0.01)
    return False


def test_a_storm_of_claims_for_one_person_gives_one_code(db: Engine) -> None:
    """Many threads, each with its own connection, claim for the same two people at once."""
    threads, claims_each = 8, 5
    stocked(db, "RUSH", 100)
    with db.begin() as conn:
        people = [add_profile(conn), add_profile(conn)]
    got: list[tuple[int, str]] = []
    lock = threading.Lock()

    def claimer(worker: int) -> None:
        for n in range(claims_each):
            person = people[(worker + n) % 2]
            claimed = claim(db, "RUSH", person, f"{worker}-{n}/coupon")
            assert claimed is not None
            with lock:
                got.append((person, claimed["code"]))

    race(threads, claimer)
    assert len(got) == threads * claims_each
    assert {person: len(codes_of(db, person)) for person in people} == {person: 1 for person in people}
    assert {(person, code) for person, code in got} == {(p, codes_of(db, p)[0]) for p in people}
    assert stock(db, "RUSH").issued == 2


# --------------------------------------------------------------------------- One-ID merges


def test_a_merge_that_leaves_a_person_two_codes_breaks_nothing(db: Engine) -> None:
    """The survivor and the absorbed profile each drew a code; the merge moves the absorbed
    one's code to the survivor (the holder index must not refuse it), and from then on every
    claim for that person, under either profile id, gives one code back, the first issued."""
    stocked(db, "LENS", 5)
    with db.begin() as conn:
        survivor, absorbed = add_profile(conn), add_profile(conn)
    kept = claim(db, "LENS", survivor, "1/c")
    later = NOW + timedelta(minutes=5)
    with db.begin() as conn:
        moved = coupons.claim(conn, "LENS", absorbed, None, "2/c", later)
    assert kept is not None and moved is not None and kept["code"] != moved["code"]
    with db.begin() as conn:
        merge(conn, survivor, absorbed, later)
    assert codes_of(db, survivor) == [kept["code"], moved["code"]]
    assert claim(db, "LENS", survivor, "3/c") == {**kept, "reused": True}
    stale = claim(db, "LENS", absorbed, "4/c")  # a batch that still names the absorbed profile
    assert stale is not None and stale["reused"] is True
    assert stale["code"] in {kept["code"], moved["code"]}
    assert stock(db, "LENS") == coupons.Stock(total=5, issued=2, redeemed=0, expired=0, available=3)


def test_a_code_moved_by_a_merge_is_the_survivors_one_code(db: Engine) -> None:
    stocked(db, "LENS", 5)
    with db.begin() as conn:
        survivor, absorbed = add_profile(conn), add_profile(conn)
    moved = claim(db, "LENS", absorbed, "1/c")
    with db.begin() as conn:
        merge(conn, survivor, absorbed, NOW)
    assert moved is not None
    assert claim(db, "LENS", survivor, "2/c") == {**moved, "reused": True}
    with db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(coupon_codes)
                           .where(coupon_codes.c.profile_id.is_not(None))) == 1
