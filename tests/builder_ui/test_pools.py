"""The builder's coupon pools page over HTTP: behind the login and CSRF, it lists the pools with
their free codes and setting, creates a pool, and changes how many codes one person may hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
