"""Typed values and webhook body rows: what the update and webhook forms show reads back into
the same DSL (hypothesis round trips), every example journey's updates and bodies can be shown
without a DSL box, and the posted rows go through the routes into the saved text."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from builder_ui import value_rows as vr
from dsl import model as m
from dsl.formatter import format_expr, format_number
from dsl.ids import walk_steps
from dsl.parser import parse

from .conftest import Builder

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "journeys").glob("*.journey"))
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
TEXTS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
KEYS = TEXTS.map(str.strip).filter(bool)


def reread(expr: m.Expr) -> m.Expr:
    """The expression as the parser reads its formatted text (`-5` may read as a negation)."""
    found = vr.parse_value(format_expr(expr))
    assert found is not None, format_expr(expr)
    return found


NUMBERS = st.integers(-10**9, 10**9) | st.floats(-1e6, 1e6, allow_nan=False).filter(math.isfinite)
SCALARS = st.one_of(
    TEXTS.map(m.Lit), NUMBERS.map(m.Lit), st.booleans().map(m.Lit),
    st.tuples(st.sampled_from(["user", "event"]), NAMES).map(lambda p: m.Path(p)),
    st.tuples(NAMES.filter(lambda n: n not in ("user", "event", "journey")), NAMES).map(lambda p: m.Path(p)),
)
OTHERS = st.one_of(  # what no typed box shows: kept as DSL text
    st.just(m.Lit(None)),
    st.tuples(SCALARS, SCALARS).map(lambda lr: m.Binary("+", lr[0], lr[1])),
    SCALARS.map(lambda a: m.Call("lower", (a,))),
)
VALUES = st.recursive(
    SCALARS | OTHERS,
    lambda inner: st.lists(inner, max_size=3).map(lambda xs: m.ListExpr(tuple(xs)))
    | st.dictionaries(KEYS, inner, max_size=3).map(lambda d: m.ObjectExpr(tuple(d.items()))),
    max_leaves=8,
)
BODIES = st.dictionaries(KEYS, VALUES, max_size=4).map(lambda d: m.ObjectExpr(tuple(d.items())))


def posted(rows: list[dict[str, object]]) -> list[tuple[str, str]]:
    """The form fields the body editor posts for these rows, in document order."""
    out: list[tuple[str, str]] = [("kind", "webhook"), ("body_mode", "rows")]
    for row in rows:
        out += [("body_depth", str(row["depth"])), ("body_key", str(row["key"])), ("body_kind", str(row["kind"])),
                ("body_value", str(row["value"])), ("body_other", "")]
    return out


# --------------------------------------------------------------------------- round trips


@given(VALUES)
def test_a_value_shown_in_the_form_writes_back_the_same_expression(expr: m.Expr) -> None:
    expr = reread(expr)
    typed = vr.typed_of(expr)
    text, problem = vr.typed_dsl(typed)
    assert problem is None
    assert vr.parse_value(text) == expr


@given(st.one_of(
    TEXTS.map(lambda t: vr.Typed("text", t)),
    NUMBERS.map(lambda n: vr.Typed("number", format_number(n))),
    st.sampled_from(["true", "false"]).map(lambda b: vr.Typed("bool", b)),
    st.tuples(st.sampled_from(["user", "event"]), NAMES).map(lambda kn: vr.Typed(*kn)),
))
def test_what_a_marketer_types_in_a_box_reads_back_into_the_same_box(typed: vr.Typed) -> None:
    text, problem = vr.typed_dsl(typed)
    assert problem is None
    assert vr.typed_of_text(text) == typed


@given(BODIES)
def test_a_body_shown_as_rows_and_posted_back_is_the_same_body(body: m.ObjectExpr) -> None:
    body = reread(body)  # type: ignore[assignment]
    shown = vr.view({"kind": "webhook", "body": format_expr(body)})["body_rows"]
    assert isinstance(shown, list)
    fields, errors = vr.collect(posted(shown))
    assert errors == []
    assert vr.parse_value(fields["body"]) == body if body.items else fields["body"] == ""


# --------------------------------------------------------------------------- the examples


def example_steps() -> list[m.Step]:
    return [s for path in EXAMPLES for s in walk_steps(parse(path.read_text()).steps)]


def test_every_example_update_shows_in_typed_boxes_and_writes_the_same_text() -> None:
    updates = [s for s in example_steps() if isinstance(s, m.UpdateProfile)]
    assert len(updates) >= 10
    for step in updates:
        typed = vr.typed_of(step.value)
        assert typed.kind in ("text", "number", "event"), format_expr(step.value)
        assert vr.typed_dsl(typed) == (format_expr(step.value), None)


def test_every_example_body_shows_as_rows_without_a_text_box_and_writes_the_same_text() -> None:
    bodies = [s.body for s in example_steps() if isinstance(s, m.CallWebhook) and s.body is not None]
    assert len(bodies) >= 6
    for body in bodies:
        rows = vr.rows_of(body)
        assert rows is not None and all(r.kind != "dsl" for r in rows), format_expr(body)
        assert vr.rows_dsl(rows) == (format_expr(body), [])


def test_a_nested_group_and_a_list_read_as_indented_rows() -> None:
    body = vr.parse_value('{"data": {"name": user.first_name, "points": 100}, "benefits": ["a", "b"], "ok": true}')
    assert body is not None
    assert vr.rows_of(body) == [
        vr.Row(0, "data", "group"), vr.Row(1, "name", "user", "first_name"), vr.Row(1, "points", "number", "100"),
        vr.Row(0, "benefits", "list"), vr.Row(1, "", "text", "a"), vr.Row(1, "", "text", "b"),
        vr.Row(0, "ok", "bool", "true"),
    ]


# --------------------------------------------------------------------------- what the boxes cannot say


def test_a_box_that_does_not_hold_its_kind_says_so_in_words() -> None:
    _, errors = vr.collect([("kind", "update"), ("upd_kind", "number"), ("upd_value", "lots")])
    assert [(e.field, e.message) for e in errors] == [("value", vr.NUMBER_HINT)]
    rows = [("body_mode", "rows"), ("body_depth", "0"), ("body_key", " "), ("body_kind", "text"),
            ("body_value", "x"), ("body_other", ""), ("body_depth", "0"), ("body_key", "n"),
            ("body_kind", "number"), ("body_value", "1,5"), ("body_other", "")]
    _, errors = vr.collect(rows)
    assert [e.message for e in errors] == ["a field of the body has no name", f"“n”: {vr.NUMBER_HINT}"]
    _, errors = vr.collect([("body_mode", "rows"), ("body_depth", "0"), ("body_key", "a")])
    assert [e.message for e in errors] == ["the body's rows arrived incomplete: close the step and open it again"]


def test_other_names_a_new_field_and_a_body_not_an_object_stays_as_text() -> None:
    fields, errors = vr.collect([("field_pick", vr.OTHER), ("field_other", " home_store "), ("upd_kind", "user"),
                                 ("upd_value", vr.OTHER), ("upd_value_other", "region")])
    assert errors == [] and fields["field"] == "home_store" and fields["value"] == "user.region"
    assert vr.rows_of_text("user.payload") is None and vr.rows_of_text("") == []
    assert vr.typed_of_text("user.total_spend * 2") == vr.Typed("dsl", "user.total_spend * 2")


# --------------------------------------------------------------------------- through the routes


def create(b: Builder, source: str) -> str:
    response = b.client.post("/builder/journeys", data={"name": "Rows", "csrf_token": b.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": source}, b.csrf()).status_code == 200
    return slug


def source(b: Builder, slug: str) -> str:
    page = b.client.get(f"/builder/journeys/{slug}").text
    found = re.search(r'<textarea[^>]*id="dsl-text"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found is not None
    return html.unescape(found.group(1))


ROUTED = """journey "Rows"
  trigger event "order_paid"

  @tally update user.lens_budget += event.amount
  @thanks call webhook "https://crm.example.com/hook" with {"member_id": user.crm_member_id, "data": {"points": 100}}
"""


def test_the_update_panel_shows_typed_boxes_and_applying_them_writes_the_dsl(signed_in: Builder) -> None:
    slug = create(signed_in, ROUTED)
    panel = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "0"}).text
    assert re.search(r'<option value="event" selected>the event&#39;s property …</option>', panel)
    assert '<option value="amount" selected>amount (not found)</option>' in panel  # order_paid is not in the catalog
    assert re.search(r'<option value="lens_budget" selected>lens budget \(no profile has it yet\)</option>', panel)
    form = {"path": "0", "kind": "update", "label": "tally", "field_pick": vr.OTHER, "field_other": "points",
            "op": "+=", "upd_kind": "number", "upd_value": "100", "rev": signed_in.rev(slug)}
    applied = signed_in.htmx(f"/builder/journeys/{slug}/step", form, signed_in.csrf())
    assert applied.status_code == 200, applied.text
    assert "\n  @tally update user.points += 100\n" in source(signed_in, slug)
    refused = signed_in.htmx(f"/builder/journeys/{slug}/step", form | {"upd_value": "lots", "rev": signed_in.rev(slug)},
                             signed_in.csrf())
    assert refused.status_code == 422 and vr.NUMBER_HINT in refused.text


def test_the_webhook_panel_shows_rows_and_applying_them_writes_the_dsl(signed_in: Builder) -> None:
    slug = create(signed_in, ROUTED)
    panel = signed_in.client.get(f"/builder/journeys/{slug}/step", params={"path": "1"}).text
    assert len(re.findall(r'class="body-row[ "]', panel)) == 3 + 3  # three rows, and the blank rows to copy
    rows = [{"depth": 0, "key": "member_id", "kind": "user", "value": "crm_member_id"},
            {"depth": 0, "key": "benefits", "kind": "list", "value": ""},
            {"depth": 1, "key": "", "kind": "text", "value": "member_price"},
            {"depth": 0, "key": "data", "kind": "group", "value": ""},
            {"depth": 1, "key": "name", "kind": "user", "value": "first_name"}]
    form = [("path", "1"), ("label", "thanks"), ("url", "https://crm.example.com/hook"), ("result", ""),
            ("rev", signed_in.rev(slug)), *posted(rows)]
    applied = signed_in.client.post(  # repeated fields, in order: what a browser posts
        f"/builder/journeys/{slug}/step", content=urlencode(form),
        headers={"HX-Request": "true", "X-CSRF-Token": signed_in.csrf(),
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert applied.status_code == 200, applied.text
    assert ('with {"member_id": user.crm_member_id, "benefits": ["member_price"], "data": {"name": user.first_name}}'
            in source(signed_in, slug))
