"""The builder's coupon pools page over HTTP: behind the login and CSRF, it lists the pools with
their free codes and setting, creates a pool, changes how many codes one person may hold, and
stocks a pool from a CSV file; the coupon step's form offers the pools with their free codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from storage import connect, coupons

from .conftest import Builder

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def settings(b: Builder) -> dict[str, tuple[str, int]]:
    """Each pool's setting and free codes, as stored."""
    db = connect(b.database_url)
    try:
        with db.connect() as conn:
            return {p.name: (p.codes_per_user, p.stock.available) for p in coupons.all_pools(conn, NOW)}
    finally:
        db.dispose()


def stock(b: Builder, name: str, codes: int, codes_per_user: coupons.CodesPerUser) -> None:
    db = connect(b.database_url)
    try:
        with db.begin() as conn:
            coupons.create_pool(conn, name, NOW, codes_per_user)
            coupons.import_csv(conn, name, (f"{name}-{i}\n" for i in range(codes)))
    finally:
        db.dispose()


def selected(html: str, pool: str) -> str:
    """The option chosen in a pool's row."""
    row = re.search(rf'<tr id="pool-{re.escape(pool)}">(.*?)</tr>', html, re.S)
    assert row is not None, f"no row for {pool}"
    chosen = re.search(r'<option value="(\w+)" selected>', row.group(1))
    assert chosen is not None
    return chosen.group(1)


def test_the_page_needs_a_session_and_changes_need_the_token(builder: Builder) -> None:
    page = builder.client.get("/builder/pools")
    assert (page.status_code, page.headers["location"]) == (303, "/builder/login?next=/builder/pools")
    assert builder.client.post("/builder/pools", data={"name": "P", "codes_per_user": "one"}).status_code == 303
    assert builder.login().status_code == 303
    refused = builder.client.post("/builder/pools", data={"name": "P", "codes_per_user": "one"})
    assert refused.status_code == 403
    stock(builder, "LENS", 1, "one")
    no_token = builder.client.post("/builder/pools/LENS/codes-per-user", data={"codes_per_user": "unlimited"})
    assert no_token.status_code == 403
    assert settings(builder) == {"LENS": ("one", 1)}


def test_the_page_lists_pools_with_free_codes_and_their_setting(signed_in: Builder) -> None:
    stock(signed_in, "LENS_TRIAL", 3, "one")
    stock(signed_in, "GIFT", 2, "unlimited")
    page = signed_in.client.get("/builder/pools")
    assert page.status_code == 200
    assert 'href="/builder/pools">Coupon pools</a>' in signed_in.client.get("/builder/").text  # the nav link
    assert "Codes per person" in page.text
    assert "One (a person who already has a code gets the same one again)" in page.text
    assert "A new code every time" in page.text
    assert selected(page.text, "LENS_TRIAL") == "one"
    assert selected(page.text, "GIFT") == "unlimited"
    row = re.search(r'<tr id="pool-LENS_TRIAL">\s*<th scope="row">LENS_TRIAL</th>\s*<td class="num">(\d+)</td>',
                    page.text)
    assert row is not None and row.group(1) == "3"


def test_a_pool_is_created_with_the_choice_made(signed_in: Builder) -> None:
    token = signed_in.csrf("/builder/pools")
    one = signed_in.client.post("/builder/pools", data={"name": "LENS_TRIAL", "codes_per_user": "one",
                                                        "csrf_token": token})
    every_time = signed_in.client.post("/builder/pools", data={"name": "GIFT", "codes_per_user": "unlimited",
                                                               "csrf_token": token})
    assert one.status_code == every_time.status_code == 303
    assert one.headers["location"] == "/builder/pools#pool-LENS_TRIAL"
    assert settings(signed_in) == {"GIFT": ("unlimited", 0), "LENS_TRIAL": ("one", 0)}


def test_a_pool_can_be_switched_between_one_code_and_a_new_code_every_time(signed_in: Builder) -> None:
    stock(signed_in, "LENS", 2, "one")
    token = signed_in.csrf("/builder/pools")
    changed = signed_in.client.post("/builder/pools/LENS/codes-per-user",
                                    data={"codes_per_user": "unlimited", "csrf_token": token})
    assert changed.status_code == 303
    assert settings(signed_in) == {"LENS": ("unlimited", 2)}
    assert selected(signed_in.client.get("/builder/pools").text, "LENS") == "unlimited"
    back = signed_in.client.post("/builder/pools/LENS/codes-per-user", data={"codes_per_user": "one"},
                                 headers={"X-CSRF-Token": token})
    assert back.status_code == 303
    assert settings(signed_in) == {"LENS": ("one", 2)}


def test_bad_input_is_refused_in_words_and_changes_nothing(signed_in: Builder) -> None:
    stock(signed_in, "LENS", 1, "one")
    token = signed_in.csrf("/builder/pools")
    cases = [
        ("/builder/pools", {"name": "has space", "codes_per_user": "one"}, "A pool name is up to 100 letters"),
        ("/builder/pools", {"name": "NEW", "codes_per_user": "two"}, "Choose how many codes one person may get"),
        ("/builder/pools", {"name": "LENS", "codes_per_user": "one"}, "There is already a pool named LENS"),
        ("/builder/pools/LENS/codes-per-user", {"codes_per_user": "many"}, "Choose how many codes"),
        ("/builder/pools/GONE/codes-per-user", {"codes_per_user": "one"}, "There is no pool named GONE"),
    ]
    for path, data, message in cases:
        refused = signed_in.client.post(path, data={**data, "csrf_token": token})
        assert (refused.status_code, message in refused.text) == (422, True), (path, data)
    assert settings(signed_in) == {"LENS": ("one", 1)}


def test_names_are_shown_as_text(signed_in: Builder) -> None:
    token = signed_in.csrf("/builder/pools")
    refused = signed_in.client.post("/builder/pools", data={"name": "<script>x</script>", "codes_per_user": "one",
                                                            "csrf_token": token})
    assert refused.status_code == 422
    assert "<script>x</script>" not in refused.text
    assert "&lt;script&gt;x&lt;/script&gt;" in refused.text  # kept in the field, escaped


# ------------------------------------------------------------------ stocking a pool from a CSV file


def upload(b: Builder, pool: str, content: bytes, token: str | None = None) -> httpx.Response:
    return b.client.post(f"/builder/pools/{pool}/codes", data={"csrf_token": token or b.csrf("/builder/pools")},
                         files={"codes": ("codes.csv", content, "text/csv")})


def test_a_csv_file_stocks_a_pool_and_says_what_it_added_and_skipped(signed_in: Builder) -> None:
    stock(signed_in, "LENS", 1, "one")  # holds LENS-0 already
    done = upload(signed_in, "LENS", b"code,expires_at\nLENS-0\nA-1,2026-12-31T23:59:59+08:00\nA-2\nA-2\n")
    assert done.status_code == 303
    assert done.headers["location"] == "/builder/pools?stocked=LENS&added=2&skipped=2#pool-LENS"
    assert settings(signed_in) == {"LENS": ("one", 3)}
    page = signed_in.client.get(done.headers["location"]).text
    assert "Added 2 codes to LENS; 2 already in the pool (or twice in the file) were skipped." in page
    row = re.search(r'<tr id="pool-LENS">\s*<th scope="row">LENS</th>\s*<td class="num">(\d+)</td>', page)
    assert row is not None and row.group(1) == "3"


def test_a_bad_file_adds_nothing_and_says_which_line_is_wrong(signed_in: Builder) -> None:
    stock(signed_in, "LENS", 0, "one")
    token = signed_in.csrf("/builder/pools")
    cases = [
        (b"code\nGOOD-1\nhas space\n", "line 3: not a code"),
        (b"coupon\nX\n", "line 1: the first line must be the header"),
        (b"code\nGOOD-1\n\xff\xfe\n", "line 3: not UTF-8 text"),
        (b"", "Choose a CSV file"),
    ]
    for content, message in cases:
        refused = upload(signed_in, "LENS", content, token) if content else signed_in.client.post(
            "/builder/pools/LENS/codes", data={"csrf_token": token}, files={"codes": ("", b"", "text/csv")})
        assert (refused.status_code, message in refused.text) == (422, True), (content, refused.text[-600:])
        assert "Nothing was added" in refused.text or not content
    assert settings(signed_in) == {"LENS": ("one", 0)}
    assert upload(signed_in, "GONE", b"code\nX\n", token).status_code == 422


def test_an_upload_needs_the_token(signed_in: Builder) -> None:
    stock(signed_in, "LENS", 0, "one")
    refused = signed_in.client.post("/builder/pools/LENS/codes", files={"codes": ("c.csv", b"code\nX\n", "text/csv")})
    assert refused.status_code == 403
    assert settings(signed_in) == {"LENS": ("one", 0)}


def test_the_coupon_step_offers_the_pools_with_their_free_codes(signed_in: Builder) -> None:
    stock(signed_in, "LENS_TRIAL_STORE", 1200, "one")
    stock(signed_in, "GIFT", 0, "unlimited")
    response = signed_in.client.post("/builder/journeys", data={"name": "Coupons", "csrf_token": signed_in.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    text = 'journey "Coupons"\n  trigger api\n\n  @trial issue coupon "LENS_TRAIL" as trial\n'
    assert signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": text}, signed_in.csrf()).status_code == 200
    panel = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "0"}).text
    options = re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>',
                         re.search(r'<select name="pool">(.*?)</select>', panel, re.S).group(1))  # type: ignore[union-attr]
    assert options == [("LENS_TRAIL", " selected", "LENS_TRAIL · does not exist"), ("GIFT", "", "GIFT · 0 free"),
                       ("LENS_TRIAL_STORE", "", "LENS_TRIAL_STORE · 1,200 free")]
    assert 'href="/builder/pools?name=LENS_TRAIL"' in panel
