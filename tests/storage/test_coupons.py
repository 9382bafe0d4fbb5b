"""Coupon pools on both backends: stocking, claiming (once per code, even concurrently),
expiry, redemption, stock, and the alert when a pool runs dry."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from storage import coupons
from storage.alerts import COUPON_POOL_EMPTY, COUPON_POOL_MISSING, recent
from storage.tables import alerts, coupon_codes, profiles

from .racing import race

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def add_profile(conn: Connection) -> int:
    profile_id: int = conn.execute(insert(profiles).values(created_at=NOW, updated_at=NOW)
                                   .returning(profiles.c.id)).scalar_one()
    return profile_id


def stocked(db: Engine, pool: str, codes: list[str], expires_at: datetime | None = None,
            codes_per_user: coupons.CodesPerUser = "one") -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, pool, NOW, codes_per_user)
        coupons.import_csv(conn, pool, (f"{code}\n" for code in codes), default_expires_at=expires_at)


# --------------------------------------------------------------------------- stocking


def test_a_csv_is_imported_with_header_expiry_and_duplicates_skipped(db: Engine) -> None:
    csv_text = "code,expires_at\nLENS-1,2026-04-01T00:00:00+08:00\nLENS-2,\n\nLENS-1,\n\"LENS-3\",2026-05-01T00:00Z\n"
    with db.begin() as conn:
        coupons.create_pool(conn, "LENS", NOW)
        result = coupons.import_csv(conn, "LENS", coupons.lines([csv_text.encode()]))
        assert result == coupons.ImportResult(added=3, duplicates=1)
        found = dict(conn.execute(select(coupon_codes.c.code, coupon_codes.c.expires_at)).all())
    assert found == {"LENS-1": datetime(2026, 3, 31, 16, 0, tzinfo=UTC), "LENS-2": None,
                     "LENS-3": datetime(2026, 5, 1, tzinfo=UTC)}


def test_a_csv_is_streamed_in_batches_not_read_whole(db: Engine) -> None:
    """The generator checks, as it hands out line 2,500, that earlier batches are already in."""
    seen_in_database: list[int] = []

    with db.begin() as conn:
        coupons.create_pool(conn, "BIG", NOW)

        def upload() -> Iterator[str]:
            for i in range(5_000):
                if i == 2_500:
                    seen_in_database.append(conn.execute(select(func.count()).select_from(coupon_codes)).scalar_one())
                yield f"BIG-{i:05d}\n"

        assert coupons.import_csv(conn, "BIG", upload(), batch=1_000).added == 5_000
    assert seen_in_database == [2_000]


def test_a_bad_row_names_its_line(db: Engine) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "LENS", NOW)
        with pytest.raises(coupons.CodesInvalid, match=r"line 3: expires_at: 'tomorrow' is not an ISO 8601 time"):
            coupons.import_csv(conn, "LENS", ["code\n", "A,\n", "B,tomorrow\n"])
        with pytest.raises(coupons.CodesInvalid, match=r"line 1: expires_at: .* has no UTC offset"):
            coupons.import_csv(conn, "LENS", ["A,2026-04-01T00:00\n"])
        with pytest.raises(coupons.PoolNotFound, match="no coupon pool named 'NOPE'"):
            coupons.import_csv(conn, "NOPE", ["A\n"])
        with pytest.raises(coupons.PoolExists):
            coupons.create_pool(conn, "LENS", NOW)


def test_lines_decodes_an_upload_split_anywhere() -> None:
    data = "\ufeffcode\n优惠-1\n优惠-2".encode()
    chunks = [data[i:i + 3] for i in range(0, len(data), 3)]  # splits multi-byte characters
    assert list(coupons.lines(chunks)) == ["code\n", "优惠-1\n", "优惠-2"]


def test_generated_codes_follow_the_pattern_and_are_distinct(db: Engine) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "GEN", NOW)
        assert coupons.generate(conn, "GEN", "WB-????-##", 2_000, batch=300) == 2_000
        codes = conn.execute(select(coupon_codes.c.code)).scalars().all()
    assert len(codes) == len(set(codes)) == 2_000
    assert all(re.fullmatch(r"WB-[A-HJ-NP-Z2-9]{4}-[2-9]{2}", code) for code in codes)


@pytest.mark.parametrize(("pattern", "count", "message"), [
    ("FIXED", 1, "has no '#' or '?'"),
    ("A-##", 100, "allows 64 codes: too few for 100"),
])
def test_patterns_too_small_are_refused(db: Engine, pattern: str, count: int, message: str) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "GEN", NOW)
        with pytest.raises(coupons.CodesInvalid, match=message):
            coupons.generate(conn, "GEN", pattern, count)


# --------------------------------------------------------------------------- claiming


def test_each_claim_takes_a_different_code_and_the_same_key_the_same_one(db: Engine) -> None:
    stocked(db, "LENS", ["L-1", "L-2"], expires_at=NOW + timedelta(days=14))
    with db.begin() as conn:
        first, second = add_profile(conn), add_profile(conn)
        a = coupons.claim(conn, "LENS", first, None, "1/coupon", NOW)
        b = coupons.claim(conn, "LENS", second, None, "2/coupon", NOW)
        again = coupons.claim(conn, "LENS", first, None, "1/coupon", NOW + timedelta(hours=1))
    assert a == again == {"code": "L-1", "expires_at": "2026-03-16T10:15:00+00:00", "reused": False}
    assert b is not None and b["code"] == "L-2"


def test_an_expired_code_is_never_issued(db: Engine) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "OLD", NOW, "unlimited")
        coupons.import_csv(conn, "OLD", ["GONE,2026-03-02T10:00:00Z\n", "FRESH,2026-03-02T11:00:00Z\n",
                                         "EDGE,2026-03-02T10:15:00Z\n"])
        profile = add_profile(conn)
        claimed = coupons.claim(conn, "OLD", profile, None, "1/c", NOW)
        assert claimed is not None and claimed["code"] == "FRESH"
        assert coupons.claim(conn, "OLD", profile, None, "2/c", NOW) is None


def test_a_dry_pool_raises_one_alert_per_hour(db: Engine, caplog: pytest.LogCaptureFixture) -> None:
    stocked(db, "CART_5OFF", ["C-1"], codes_per_user="unlimited")
    with db.begin() as conn:
        profile = add_profile(conn)
        assert coupons.claim(conn, "CART_5OFF", profile, None, "1/c", NOW) is not None
        for n in range(5):
            assert coupons.claim(conn, "CART_5OFF", profile, None, f"{n + 2}/c", NOW + timedelta(minutes=n)) is None
        assert coupons.claim(conn, "CART_5OFF", profile, None, "9/c", NOW + timedelta(hours=1)) is None
        assert coupons.claim(conn, "NO_SUCH_POOL", profile, None, "10/c", NOW) is None
    with db.connect() as conn:
        raised = recent(conn)
        assert conn.scalar(select(func.count()).select_from(alerts)) == 3
    assert [(kind, subject) for _, kind, subject, _ in raised] == [
        (COUPON_POOL_EMPTY, "CART_5OFF"), (COUPON_POOL_MISSING, "NO_SUCH_POOL"), (COUPON_POOL_EMPTY, "CART_5OFF")]
    assert caplog.text.count("coupon_pool_empty") == 2


def test_concurrent_claims_never_share_a_code(db: Engine) -> None:
    """Many threads, each with its own connection, claim from one pool: every code goes to one
    claimer, every claimer gets at most one code, and the pool's end is reported, not crashed on."""
    codes, threads, claims_each = 300, 12, 30  # 360 claims for 300 codes
    stocked(db, "RUSH", [f"R-{i:04d}" for i in range(codes)], codes_per_user="unlimited")
    with db.begin() as conn:
        profile = add_profile(conn)
    got: list[str] = []
    dry = 0
    lock = threading.Lock()

    def claimer(worker: int) -> None:
        nonlocal dry
        for n in range(claims_each):
            with db.begin() as conn:
                claimed = coupons.claim(conn, "RUSH", profile, None, f"{worker}-{n}/coupon", NOW)
            with lock:
                if claimed is None:
                    dry += 1
                else:
                    got.append(claimed["code"])

    race(threads, claimer)
    assert len(got) == len(set(got)) == codes
    assert dry == threads * claims_each - codes
    with db.connect() as conn:
        assert coupons.stock(conn, "RUSH", NOW) == coupons.Stock(total=codes, issued=codes, redeemed=0, expired=0,
                                                                 available=0)
        keys = conn.execute(select(coupon_codes.c.claim_key)).scalars().all()
    assert len(set(keys)) == codes


# --------------------------------------------------------------------------- redemption and stock


def test_redeeming_marks_the_code_once_and_never_raises(db: Engine) -> None:
    stocked(db, "GIFT", ["G-1", "G-2"])
    with db.begin() as conn:
        coupons.claim(conn, "GIFT", add_profile(conn), None, "1/gift", NOW)
        later = NOW + timedelta(days=2)
        assert coupons.redeem(conn, "G-1", later, pool="GIFT") == "redeemed"
        assert coupons.redeem(conn, "G-1", later + timedelta(hours=1)) == "already_redeemed"
        assert coupons.redeem(conn, "G-2", later) == "not_issued"
        assert coupons.redeem(conn, "G-404", later) == "unknown_code"
        assert coupons.redeem(conn, "G-1", later, pool="OTHER") == "unknown_code"
        redeemed_at = conn.execute(select(coupon_codes.c.redeemed_at).where(coupon_codes.c.code == "G-1")).scalar_one()
    assert redeemed_at == later


def test_stock_counts_what_can_still_be_given(db: Engine) -> None:
    with db.begin() as conn:
        coupons.create_pool(conn, "MIX", NOW, "unlimited")
        coupons.import_csv(conn, "MIX", ["A\n", "B\n", "C\n", "OLD,2026-01-01T00:00:00Z\n"])
        profile = add_profile(conn)
        coupons.claim(conn, "MIX", profile, None, "1/c", NOW)
        coupons.claim(conn, "MIX", profile, None, "2/c", NOW)
        coupons.redeem(conn, "A", NOW)
        assert coupons.stock(conn, "MIX", NOW) == coupons.Stock(total=4, issued=2, redeemed=1, expired=1, available=1)
