"""Conditions as rows: every example's conditions read as rows and write back the same text;
rows written, parsed and read back are the same rows; the form's fields and the buttons'
changes give the rows they say."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder_ui import condition_rows as cr
from builder_ui.condition_rows import ALL, ANY, HISTORY, Group, Row
from builder_ui.field_catalog import Field, Fields
from builder_ui.forms import FieldError
from dsl import model as m
from dsl import parse
from dsl.formatter import format_expr, format_number
from dsl.ids import walk_steps

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "journeys"


def conditions(journey: m.Journey) -> Iterator[m.Expr]:
    """Every condition of a journey: triggers, audience, exits, goals, ifs, waits for an event."""
    for trigger in journey.triggers:
        if isinstance(trigger, m.EventTrigger) and trigger.where is not None:
            yield trigger.where
        elif isinstance(trigger, m.ConditionTrigger):
            yield trigger.condition
    if journey.audience is not None:
        yield journey.audience.condition
    for rule in journey.exits:
        found = rule.where if isinstance(rule, m.ExitOnEvent) else rule.condition
        if found is not None:
            yield found
    yield from (goal.where for goal in journey.goals if goal.where is not None)
    for step in walk_steps(journey.steps):
        if isinstance(step, m.If):
            yield from (arm.condition for arm in step.arms)
        elif isinstance(step, m.WaitForEvent) and step.where is not None:
            yield step.where


EXAMPLE_CONDITIONS = [(path.stem, format_expr(expr)) for path in sorted(EXAMPLES.glob("*.journey"))
                      for expr in conditions(parse(path.read_text(encoding="utf-8")))]


def test_the_examples_have_conditions_of_every_kind() -> None:
    texts = " ".join(text for _, text in EXAMPLE_CONDITIONS)
    assert len(EXAMPLE_CONDITIONS) > 40
    for piece in ("count of", "days_since(", "not in user.tags", " or ", "not exists(", "!= user.id"):
        assert piece in texts


@pytest.mark.parametrize(("example", "text"), EXAMPLE_CONDITIONS)
def test_every_example_condition_reads_as_rows_and_writes_back_the_same(example: str, text: str) -> None:
    rows = cr.read_text(text)
    assert rows is not None, f"{example}: {text} is not shown as rows"
    assert cr.expr_text(rows) == text


def test_rows_say_what_a_marketer_reads() -> None:
    assert cr.read_text('count of "purchase" where event.category == "care_solution" ever == 0') == Group(ALL, (
        Row(HISTORY, event="purchase", where=Row("event.category", "is", "care_solution"), count_op="none",
            count="0"),))
    assert cr.read_text('"unsubscribed" not in user.tags') == Group(ALL, (Row("user.tags", "has_not", "unsubscribed"),))
    assert cr.read_text("days_since(user.last_purchase_at) > 180") == Group(ALL, (
        Row("user.last_purchase_at", "ago_gt", "180"),))
    assert cr.read_text("user.total_spend >= 3000 or count of \"purchase\" within 365d >= 6") == Group(ANY, (
        Row("user.total_spend", "gte", "3000"), Row(HISTORY, event="purchase", window="within", days="365",
                                                    count_op="gte", count="6")))


@pytest.mark.parametrize("text", [
    'not (user.a == 1 or user.b == 2)',  # a negated group
    "user.a + 1 > 2",  # arithmetic
    'lower(user.city) == "shanghai"',  # a function other than exists and days_since
    'count of "purchase" within 36h >= 1',  # a window of hours
    'count of "purchase" where event.a == 1 and event.b == 2 ever >= 1',  # two tests on the event
    "3 < user.points",  # the field on the right
    "user.note != null",
    "event.amount >",  # does not read
])
def test_what_rows_cannot_say_stays_text(text: str) -> None:
    assert cr.read_text(text) is None


def test_a_group_inside_a_group_gets_its_parentheses() -> None:
    rows = Group(ALL, (Row("user.tier", "is", "gold"),
                       Group(ANY, (Row("user.points", "gt", "100"), Row("user.tags", "has", "vip")))))
    assert cr.expr_text(rows) == 'user.tier == "gold" and (user.points > 100 or "vip" in user.tags)'
    assert cr.read_text(cr.expr_text(rows)) == rows


def test_rows_not_filled_in_are_left_out_and_bad_numbers_reach_the_checks() -> None:
    assert cr.expr_text(Group(ALL, (Row(), Row("user.tier", "is", "gold"), Group(ANY, (Row(),))))) == \
        'user.tier == "gold"'
    assert cr.expr_text(Group()) == ""
    assert cr.expr_text(Group(ALL, (Row("user.points", "gte", "lots"),))) == "user.points >= lots"


# --------------------------------------------------------------------------- round trip

USER_PATHS = st.sampled_from(["user.tier", "user.total_spend", "user.signup_at", "user.address.city"])
EVENT_PATHS = st.sampled_from(["event.category", "event.amount", "event.order_id"])
WORD = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=","), min_size=1,
               max_size=12).map(str.strip).filter(bool)
NUMBERS = st.one_of(st.integers(-10**9, 10**9), st.floats(-1e9, 1e9, allow_nan=False)).map(format_number)


def row_strategy(paths: st.SearchStrategy[str]) -> st.SearchStrategy[Row]:
    text = st.builds(Row, paths, st.sampled_from(["is", "is_not", "contains"]), st.text(max_size=12))
    one_of = st.builds(lambda p, op, vs: Row(p, op, ", ".join(vs)), paths, st.sampled_from(["one_of", "not_one_of"]),
                       st.lists(WORD, min_size=1, max_size=3))
    same = st.builds(Row, paths, st.sampled_from(["same_as", "not_same_as"]), USER_PATHS)
    number = st.builds(Row, paths, st.sampled_from(list(cr.NUMBER_OPS)), NUMBERS)
    date = st.builds(Row, paths, st.sampled_from(list(cr.DATE_OPS)), NUMBERS)
    bare = st.builds(Row, paths, st.sampled_from(["yes", "no", "set", "not_set"]))
    listed = st.builds(Row, paths, st.sampled_from(["has", "has_not"]), st.text(max_size=12))
    return st.one_of(text, one_of, same, number, date, bare, listed)


def _history(event: str, where: Row | None, days: int | None, count_op: str, count: int) -> Row:
    count = 0 if count_op == "none" else count + (1 if count_op == "eq" else 0)  # == 0 reads as "none"
    return Row(HISTORY, event=event, where=where, window="ever" if days is None else "within",
               days="" if days is None else str(days), count_op=count_op, count=str(count))


HISTORY_ROWS = st.builds(_history, WORD, st.none() | row_strategy(EVENT_PATHS), st.none() | st.integers(1, 3650),
                         st.sampled_from(list(cr.COUNT_OPS)), st.integers(0, 50))
ROWS = st.one_of(row_strategy(USER_PATHS | EVENT_PATHS), HISTORY_ROWS)


def groups(join: str, depth: int) -> st.SearchStrategy[Group]:
    """Groups as the editor reads them back: a group inside a group joins the other way (a
    group joined like its parent is the same condition as its rows in the parent)."""
    inner = ANY if join == ALL else ALL
    item = ROWS if depth == 0 else st.one_of(ROWS, groups(inner, depth - 1))
    return st.builds(lambda items: Group(join, tuple(items)), st.lists(item, min_size=2, max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([ALL, ANY]).flatmap(lambda join: groups(join, 2)))
def test_rows_written_as_text_read_back_as_the_same_rows(rows: Group) -> None:
    text = cr.expr_text(rows)
    assert cr.read_text(text) == rows
    assert cr.expr_text(cr.read_text(text) or Group()) == text


# --------------------------------------------------------------------------- the form and the buttons


def form_of(name: str, group: Group, node: str = "r") -> dict[str, str]:
    """The fields the editor's template gives a group (as the browser posts them)."""
    out = {cr.key(name, node, "kind"): "group", cr.key(name, node, "join"): group.join}
    for i, item in enumerate(group.items):
        child = f"{node}.{i}"
        if isinstance(item, Group):
            out |= form_of(name, item, child)
            continue
        out |= {cr.key(name, child, part): value for part, value in (
            ("kind", "row"), ("prev", item.field), ("field", item.field), ("op", item.op), ("value", item.value),
            ("event", item.event), ("window", item.window), ("days", item.days), ("count_op", item.count_op),
            ("count", item.count))}
        if item.where is not None:
            out |= {cr.key(name, child, f"w{part}"): getattr(item.where, part) for part in ("field", "op", "value")}
            out[cr.key(name, child, "wprev")] = item.where.field
    return out


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([ALL, ANY]).flatmap(lambda join: groups(join, 2)))
def test_the_form_gives_back_the_rows_it_shows(rows: Group) -> None:
    form = {cr.mode_key("audience"): "rows", **form_of("audience", rows)}
    assert cr.group_from_form(form, "audience") == rows
    assert cr.collect(form)[0]["audience"] == cr.expr_text(rows)


def test_text_mode_and_forms_without_an_editor_keep_the_text_as_typed() -> None:
    assert cr.collect({"audience": "user.a == 1"}) == ({"audience": "user.a == 1"}, [])
    form = {cr.mode_key("audience"): "text", "audience": "user.a == 1", **form_of("audience", Group(ALL, (
        Row("user.b", "eq", "2"),)))}
    assert cr.collect(form)[0]["audience"] == "user.a == 1"


def test_rows_not_finished_say_what_they_lack_in_plain_words() -> None:
    rows = Group(ALL, (Row("user.total_spend", "gte", ""), Row("user.last_purchase_at", "ago_gt", "soon"),
                       Group(ANY, (Row("event.category", "one_of", " , "), Row("event.referrer_id", "same_as", ""))),
                       Row(HISTORY, window="within", days="0", count="x"), Row(), Row("user.tier", "is", "")))
    form = {cr.mode_key("audience"): "rows", **form_of("audience", rows)}
    earlier = FieldError("body", "from another collector")
    _, problems = cr.collect(form, [earlier])
    assert problems == [earlier] + [FieldError("audience", message) for message in (
        "total spend: a number, such as 100", "last purchase at: a number of days, such as 30",
        "category: one value at least (several separated by commas)",
        "referrer id: choose the field to compare with", "has done an event: choose the event",
        "has done an event: a number of days, such as 30", "has done an event: a number of times, such as 1")]
    finished = Group(ALL, (Row("user.total_spend", "gte", "100"), Row(HISTORY, event="purchase")))
    assert cr.collect({cr.mode_key("a"): "rows", **form_of("a", finished)})[1] == []


def test_a_form_sent_back_shows_its_rows_as_they_were() -> None:
    rows = Group(ANY, (Row("user.total_spend", "gte", ""), Row()))
    values = {cr.mode_key("audience"): "rows", "audience": "user.total_spend >= ?", **form_of("audience", rows)}
    view = cr.Editors(FIELDS).view(values, "audience")
    assert view.mode == "rows" and view.group is not None
    assert [item.row for item in view.group.items if isinstance(item, cr.RowView)] == [
        Row("user.total_spend", "gte", ""), Row()]


def test_rows_are_ordered_by_number_not_by_text() -> None:
    rows = Group(ALL, tuple(Row("user.points", "eq", str(i)) for i in range(12)))
    form = {cr.mode_key("c"): "rows", **form_of("c", rows)}
    assert cr.group_from_form(dict(reversed(list(form.items()))), "c") == rows


def test_a_field_changed_drops_the_test_chosen_for_the_field_before() -> None:
    form = {cr.mode_key("c"): "rows", **form_of("c", Group(ALL, (Row("event.category", "is", "lens"),)))}
    form[cr.key("c", "r.0", "field")] = "event.amount"
    assert cr.group_from_form(form, "c") == Group(ALL, (Row("event.amount", "", ""),))


def test_buttons_add_and_remove_rows_and_groups() -> None:
    one = Group(ALL, (Row("user.tier", "is", "gold"),))
    assert cr.apply_action(one, "add:r") == Group(ALL, (*one.items, Row()))
    grouped = cr.apply_action(one, "add_group:r")
    assert grouped == Group(ALL, (*one.items, Group(ANY, (Row(),))))
    assert cr.apply_action(grouped, "add:r.1") == Group(ALL, (*one.items, Group(ANY, (Row(), Row()))))
    assert cr.apply_action(grouped, "remove:r.1") == one
    assert cr.apply_action(grouped, "remove:r.0") == Group(ALL, (Group(ANY, (Row(),)),))
    for nonsense in ("remove:r.9", "remove:x", "explode:r", "remove:r.a"):
        assert cr.apply_action(grouped, nonsense) == grouped


# --------------------------------------------------------------------------- what the editor shows

FIELDS = Fields(
    traits={"tags": Field("user.tags", "list", ("member", "vip"), "tags"),
            "last_purchase_at": Field("user.last_purchase_at", "date", (), "last purchase at"),
            "total_spend": Field("user.total_spend", "number", (), "total spend")},
    events={"purchase": {"category": Field("event.category", "text", ("lens", "care_solution"), "category"),
                         "amount": Field("event.amount", "number", (), "amount")}},
)


def only_row(view: cr.EditorView) -> cr.RowView:
    assert view.group is not None
    row = view.group.items[0]
    assert isinstance(row, cr.RowView)
    return row


def test_the_operators_and_the_value_fit_the_field_type() -> None:
    def shown(text: str) -> tuple[list[str], str, list[str]]:
        row = only_row(cr.editor_view("c", text, FIELDS, "purchase"))
        return [o.value for o in row.ops], row.value, [v.value for v in row.values]

    assert shown('event.category == "lens"') == (
        ["is", "is_not", "one_of", "not_one_of", "contains", "same_as", "not_same_as", "set", "not_set"], "select",
        ["", "lens", "care_solution"])
    assert shown("user.total_spend >= 1") == (["eq", "ne", "gt", "gte", "lt", "lte", "set", "not_set"], "number", [])
    assert shown("days_since(user.last_purchase_at) > 60")[:2] == (
        ["ago_gt", "ago_gte", "ago_lt", "ago_lte", "set", "not_set"], "days")
    assert shown('"vip" in user.tags') == (["has", "has_not", "set", "not_set"], "select", ["", "member", "vip"])


def test_a_new_field_gets_its_type_s_first_operator() -> None:
    view = cr.editor_view("c", "", FIELDS, "purchase", group=Group(ALL, (Row("event.amount"),)))
    assert only_row(view).row.op == "eq"
    fields = [c.value for c in only_row(view).fields]
    assert fields[:3] == ["", "event.amount", "event.category"] and fields[-1] == HISTORY
    assert "event.amount" not in [c.value for c in only_row(cr.editor_view("c", "", FIELDS, None)).fields]


def test_a_history_row_offers_the_event_s_properties_for_its_where() -> None:
    row = only_row(cr.editor_view("c", 'count of "purchase" where event.category == "lens" ever >= 1', FIELDS, None))
    assert row.where is not None
    assert [c.value for c in row.where.fields] == ["", "event.amount", "event.category"]
    assert [c.value for c in row.events if c.selected] == ["purchase"]


def test_text_the_rows_cannot_show_is_edited_as_text() -> None:
    view = cr.editor_view("c", "user.a + 1 > 2", FIELDS, None)
    assert (view.mode, view.forced_text, view.text) == ("text", True, "user.a + 1 > 2")
    asked = cr.editor_view("c", "user.total_spend > 2", FIELDS, None, as_text=True)
    assert (asked.mode, asked.forced_text) == ("text", False)
    empty = cr.editor_view("c", "", FIELDS, None)
    assert empty.mode == "rows" and only_row(empty).row == Row()


def test_a_branch_just_added_opens_as_a_row_to_fill_in() -> None:
    """ "+ branch" writes `false` for a new else-if, so nobody goes down it yet: the editor shows
    an empty row to choose a field in, not the word false as text."""
    view = cr.editor_view("condition_1", "false", FIELDS, None)
    assert view.mode == "rows" and only_row(view).row == Row()
    assert view.text == ""  # left unfilled, the rows write nothing, and the form asks for a condition


@pytest.mark.parametrize("typed", ["²", "١٢", "𝟗"])  # str.isdigit says yes; int() raised (a 500) or took 12
def test_a_number_typed_in_other_scripts_is_a_problem_not_a_crash(typed: str) -> None:
    within = Row(field=HISTORY, event="purchase", window="within", days=typed)
    assert "has done purchase: a number of days, such as 30" in cr.row_problems(within)
    counted = Row(field=HISTORY, event="purchase", count_op="gte", count=typed)
    assert "has done purchase: a number of times, such as 1" in cr.row_problems(counted)
