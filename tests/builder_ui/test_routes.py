"""The builder's routes over HTTP, where no browser is needed: sign-in and its limits, CSRF,
edits on a stale page, the DSL panel, publishing with problems, and escaping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from builder_ui import throttle
from engine.clock import SystemClock
from journeyflow.serve import FIRST_ADMIN, create_first_admin
from storage import connect, users
from storage.tables import journey_versions

from .conftest import HIDDEN_CSRF, PASSWORD, USERNAME, Builder


def create(b: Builder, name: str = "Lens cross-sell") -> str:
    response = b.client.post("/builder/journeys", data={"name": name, "csrf_token": b.csrf()})
    assert response.status_code == 303
    return str(response.headers["location"]).rsplit("/", 1)[-1]


def test_pages_need_a_session(builder: Builder) -> None:
    page = builder.client.get("/builder/journeys/x")
    assert page.status_code == 303
    assert page.headers["location"] == "/builder/login?next=/builder/journeys/x"
    partial = builder.client.get("/builder/", headers={"HX-Request": "true"})
    assert partial.status_code == 401
    assert partial.headers["hx-redirect"].startswith("/builder/login")


def test_the_session_cookie_is_http_only_and_same_site(builder: Builder) -> None:
    response = builder.login()
    cookie = response.headers["set-cookie"].lower()
    assert "jf_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert response.headers["location"] == "/builder/"


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(builder: Builder) -> None:
    wrong, unknown = builder.login(password="nope"), builder.login(username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.text and "do not match" in unknown.text
    assert "jf_session" not in builder.client.cookies


def test_repeated_failures_are_slowed_down(builder: Builder) -> None:
    for _ in range(throttle.ACCOUNT_FROM_SOURCE.attempts):
        assert builder.login(password="guess").status_code == 401
    blocked = builder.login()  # even the right password waits now, unchecked
    assert blocked.status_code == 429
    assert "try again in" in blocked.text


def test_the_login_form_needs_its_own_token(builder: Builder) -> None:
    refused = builder.client.post("/builder/login", data={"username": USERNAME, "password": PASSWORD})
    assert refused.status_code == 403


def test_changes_without_the_csrf_token_are_refused(signed_in: Builder) -> None:
    slug = create(signed_in)
    rev = signed_in.rev(slug)
    data = {"kind": "wait", "block": "", "index": "0", "rev": rev}
    assert signed_in.htmx(f"/builder/journeys/{slug}/insert", data).status_code == 403
    assert signed_in.htmx(f"/builder/journeys/{slug}/insert", data, csrf="forged").status_code == 403
    assert signed_in.client.post("/builder/logout").status_code == 403
    assert signed_in.rev(slug) == rev  # nothing changed
    assert signed_in.htmx(f"/builder/journeys/{slug}/insert", data, csrf=signed_in.csrf()).status_code == 200
    assert signed_in.rev(slug) != rev


def test_an_edit_made_on_an_older_text_is_refused(signed_in: Builder) -> None:
    slug = create(signed_in)
    csrf, old = signed_in.csrf(), signed_in.rev(slug)
    signed_in.htmx(f"/builder/journeys/{slug}/insert", {"kind": "sms", "block": "", "index": "0", "rev": old}, csrf)
    stale = signed_in.htmx(f"/builder/journeys/{slug}/delete", {"path": "0", "rev": old}, csrf)
    assert stale.status_code == 409
    assert "changed in another window" in stale.text
    assert "@sms_1" in stale.text  # the answer redraws the current journey


def test_text_typed_in_the_dsl_panel_is_saved_as_typed_and_redraws_the_canvas(signed_in: Builder) -> None:
    slug = create(signed_in, "Typed")
    text = 'journey "Typed"\n  trigger api\n\n  @first  wait 2d\n'  # not canonical: kept as typed
    response = signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": text}, signed_in.csrf())
    assert response.status_code == 200
    assert 'data-step-id="first"' in response.text
    assert 'id="dsl-text"' not in response.text  # the textarea is left alone while typing
    page = signed_in.client.get(f"/builder/journeys/{slug}").text
    assert "@first  wait 2d" in page


def test_a_publish_with_problems_is_refused_and_shows_them_on_the_steps(signed_in: Builder) -> None:
    slug = create(signed_in, "Broken")
    csrf = signed_in.csrf()
    text = 'journey "Broken"\n  trigger api\n\n  @hello send sms "Hi {{ nobody.name }}"\n'
    signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": text}, csrf)
    refused = signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": signed_in.rev(slug)}, csrf)
    assert refused.status_code == 422
    assert "Not published" in refused.text
    assert 'class="step has-problem" data-path="0" data-step-id="hello"' in refused.text
    assert "unknown name &#39;nobody&#39;" in refused.text


def test_a_publish_from_the_builder_records_who_published(signed_in: Builder) -> None:
    slug = create(signed_in, "Signed")
    csrf = signed_in.csrf()
    text = 'journey "Signed"\n  trigger api\n\n  @hello send sms "Hi"\n'  # a journey of `pass` only is refused
    signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": text}, csrf)
    published = signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": signed_in.rev(slug)}, csrf)
    assert published.status_code == 200, published.text
    db = connect(signed_in.database_url)
    try:
        with db.connect() as conn:
            by = conn.execute(select(journey_versions.c.published_by)
                              .where(journey_versions.c.published_at.is_not(None))).scalars().all()
    finally:
        db.dispose()
    assert by == [f"user:{USERNAME}"]


def test_user_text_is_escaped_everywhere(signed_in: Builder) -> None:
    slug = create(signed_in, "<script>alert(1)</script>")
    csrf = signed_in.csrf()
    listing = signed_in.client.get("/builder/").text
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    text = 'journey "x"\n  trigger api\n\n  @hi send sms "</textarea><hx-partial hx-target=\\"body\\">"\n'
    response = signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": text}, csrf)
    assert "<hx-partial hx-target=\\" not in response.text
    assert "</textarea><hx" not in signed_in.client.get(f"/builder/journeys/{slug}").text


def test_the_step_check_reports_problems_on_fields_and_renders_the_preview(signed_in: Builder) -> None:
    slug = create(signed_in, "Check")
    csrf = signed_in.csrf()
    signed_in.htmx(f"/builder/journeys/{slug}/insert", {"kind": "wait_for_event", "block": "", "index": "0",
                                                       "rev": signed_in.rev(slug)}, csrf)
    bad = signed_in.htmx(f"/builder/journeys/{slug}/step/check", {
        "path": "0", "kind": "wait_for_event", "label": "looked", "event": "purchase", "where": "event.category ==",
        "timeout": "5d"}, csrf)
    assert 'data-field="where"' in bad.text
    signed_in.htmx(f"/builder/journeys/{slug}/insert", {"kind": "sms", "block": "", "index": "0",
                                                       "rev": signed_in.rev(slug)}, csrf)
    preview = signed_in.htmx(f"/builder/journeys/{slug}/step/check", {
        "path": "0", "kind": "sms", "label": "sms_1", "content": "text", "text": "Hi {{ user.first_name }}"}, csrf)
    assert "Hi Lin" in preview.text
    assert "data-field" not in preview.text


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/builder", "/v1/journeys"])
def test_sign_in_never_redirects_out_of_the_builder(builder: Builder, next_url: str) -> None:
    token = HIDDEN_CSRF.search(builder.client.get("/builder/login").text)
    assert token is not None
    response = builder.client.post("/builder/login", data={"username": USERNAME, "password": PASSWORD,
                                                          "csrf_token": token.group(1), "next": next_url})
    assert response.headers["location"] == "/builder/"


def test_the_first_admin_is_created_once(builder: Builder) -> None:
    db = connect(builder.database_url)
    try:
        with db.begin() as conn:
            conn.execute(users.builder_users.delete())
        password = create_first_admin(db, SystemClock())
        assert password is not None
        assert create_first_admin(db, SystemClock()) is None
    finally:
        db.dispose()
    assert builder.login(FIRST_ADMIN, password).status_code == 303


def test_a_bad_journey_link_is_an_html_page_with_the_way_back(builder: Builder) -> None:
    builder.login()
    page = builder.client.get("/builder/journeys/no-such-journey", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is nothing at this address" in page.text and 'href="/builder/"' in page.text
    assert "no such journey" in page.text and '"type"' not in page.text
    unknown = builder.client.get("/builder/no/such/page", headers={"Accept": "text/html"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    # A program, and the API, still get problem+json.
    api = builder.client.get("/builder/journeys/no-such-journey", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
    assert builder.client.get("/v1/journeys/nope", headers={"Accept": "text/html"}).headers[
        "content-type"] == "application/problem+json"


def test_a_second_journey_of_an_existing_name_asks_first(builder: Builder) -> None:
    builder.login()
    first = create(builder, "Lens cross-sell")
    asked = builder.client.post("/builder/journeys", data={"name": "lens CROSS-sell", "csrf_token": builder.csrf()})
    assert asked.status_code == 409
    assert "already exists" in asked.text and f'href="/builder/journeys/{first}"' in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert builder.client.get("/builder/").text.count("lens CROSS-sell") == 0  # nothing was created
    made = builder.client.post("/builder/journeys", data={"name": "lens CROSS-sell", "confirmed": "yes",
                                                           "csrf_token": builder.csrf()})
    assert made.status_code == 303 and made.headers["location"] == f"/builder/journeys/{first}-2"
