"""Conditions as rows a marketer fills in, to and from the DSL's expressions.

A row is one test ("category is lens", "has done purchase at least 1 time"); rows sit in
groups joined by all (`and`) or any (`or`), and a group may hold groups. The DSL text stays
the source of truth: rows are written as a model expression and printed by the formatter, so
the text a click-built condition produces is the text an author would write, and an
expression is read back into rows when the rows can say it exactly (`rows_of` answers None
otherwise, and the editor shows the text).

Each operator key says how its row is written, so a row carries no type of its own: "gte"
is a number comparison, "ago_gt" a date, "has" a list. The form's fields for editor NAME are
`NAME~<node>~<part>`, nodes numbered "r" (the top group), "r.0", "r.1.0"...

Pure: no I/O. `rows_view` prepares what the template shows from the rows and the known fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

from dsl import JourneyError, parse
from dsl import model as m
from dsl.durations import DAY
from dsl.formatter import format_expr, format_number
from dsl.numerals import ascii_digits

from .forms import FieldError

if TYPE_CHECKING:
    from .field_catalog import Field, Fields

HISTORY = "history"  # the field of a "has done an event" row
NOBODY = "false"  # the condition of a branch just added: nobody goes down it yet
TOP = "r"
SEP = "~"
ALL, ANY = "all", "any"
_JOIN_OP: dict[str, m.BinaryOp] = {ALL: "and", ANY: "or"}
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_STAND_IN = 'journey "condition"\n  trigger api\n  audience {}\n\n  pass\n'

# op key -> (words, DSL comparison); per type, in the order the menu offers them.
TEXT_OPS = {"is": ("is", "=="), "is_not": ("is not", "!="), "one_of": ("is one of", "in"),
            "not_one_of": ("is not one of", "not in"), "contains": ("contains", "contains"),
            "same_as": ("is the same as", "=="), "not_same_as": ("is not the same as", "!=")}
NUMBER_OPS = {"eq": ("=", "=="), "ne": ("≠", "!="), "gt": (">", ">"), "gte": ("≥", ">="),
              "lt": ("<", "<"), "lte": ("≤", "<=")}
BOOL_OPS = {"yes": ("is yes", "=="), "no": ("is no", "==")}
DATE_OPS = {"ago_gt": ("was more than … days ago", ">"), "ago_gte": ("was at least … days ago", ">="),
            "ago_lt": ("was less than … days ago", "<"), "ago_lte": ("was at most … days ago", "<=")}
LIST_OPS = {"has": ("has", "in"), "has_not": ("does not have", "not in")}
PRESENCE_OPS = {"set": ("is set", ""), "not_set": ("is not set", "")}
OPS_BY_TYPE: dict[str, dict[str, tuple[str, str]]] = {
    "text": {**TEXT_OPS, **PRESENCE_OPS}, "number": {**NUMBER_OPS, **PRESENCE_OPS},
    "bool": {**BOOL_OPS, **PRESENCE_OPS}, "date": {**DATE_OPS, **PRESENCE_OPS}, "list": {**LIST_OPS, **PRESENCE_OPS},
}
COUNT_OPS = {"gte": ("at least", ">="), "eq": ("exactly", "=="), "lte": ("at most", "<="),
             "gt": ("more than", ">"), "lt": ("fewer than", "<"), "none": ("none", "==")}
WINDOWS = {"ever": "ever", "within": "in the last"}
_READ_NUMBER = {dsl: key for key, (_, dsl) in NUMBER_OPS.items()}
_READ_DATE = {dsl: key for key, (_, dsl) in DATE_OPS.items()}
_READ_COUNT = {dsl: key for key, (_, dsl) in COUNT_OPS.items() if key != "none"}


@dataclass(frozen=True)
class Row:
    """One test. `field` is a path ("user.tier", "event.category") or HISTORY; `value` is what
    the marketer typed or picked (a number, a text, "a, b" for one of, a path for same as)."""

    field: str = ""
    op: str = ""
    value: str = ""
    event: str = ""  # HISTORY: the event counted
    where: Row | None = None  # HISTORY: the test on the counted events' properties
    window: str = "ever"  # HISTORY: "ever" or "within"
    days: str = ""  # HISTORY, within: how many days back
    count_op: str = "gte"
    count: str = "1"


@dataclass(frozen=True)
class Group:
    join: str = ALL
    items: tuple[Row | Group, ...] = field(default_factory=tuple)


def type_of_op(op: str) -> str | None:
    """The field type an operator belongs to; None for "is set", which fits every type."""
    for kind, ops in (("text", TEXT_OPS), ("number", NUMBER_OPS), ("bool", BOOL_OPS),
                      ("date", DATE_OPS), ("list", LIST_OPS)):
        if op in ops:
            return kind
    return None


# --------------------------------------------------------------------------- reading: expression -> rows


def rows_of(expr: m.Expr | None) -> Group | None:
    """The rows that write `expr` back exactly, or None when rows cannot say it."""
    if expr is None:
        return Group()
    read = _node(expr)
    if read is None:
        return None
    return read if isinstance(read, Group) else Group(ALL, (read,))


def _node(expr: m.Expr) -> Row | Group | None:
    if isinstance(expr, m.Binary) and expr.op in ("and", "or"):
        join = ALL if expr.op == "and" else ANY
        items = []
        for part in _chain(expr, expr.op):
            read = _node(part)
            if read is None:
                return None
            items.append(read)
        return Group(join, tuple(items))
    return row_of(expr)


def _chain(expr: m.Expr, op: str) -> list[m.Expr]:
    if isinstance(expr, m.Binary) and expr.op == op:
        return _chain(expr.left, op) + _chain(expr.right, op)
    return [expr]


def _path(expr: m.Expr) -> str | None:
    return ".".join(expr.parts) if isinstance(expr, m.Path) and len(expr.parts) > 1 else None


def _text(expr: m.Expr) -> str | None:
    return expr.value if isinstance(expr, m.Lit) and isinstance(expr.value, str) else None


def _number(expr: m.Expr) -> str | None:
    if isinstance(expr, m.Lit) and isinstance(expr.value, int | float) and not isinstance(expr.value, bool):
        return format_number(expr.value)
    return None


def _exists(expr: m.Expr) -> str | None:
    if isinstance(expr, m.Call) and expr.name == "exists" and len(expr.args) == 1:
        return _path(expr.args[0])
    return None


def row_of(expr: m.Expr) -> Row | None:
    """One test as a row, or None."""
    if (path := _exists(expr)) is not None:
        return Row(path, "set")
    if isinstance(expr, m.Unary) and expr.op == "not" and (path := _exists(expr.operand)) is not None:
        return Row(path, "not_set")
    if isinstance(expr, m.Compare):
        return _compare(expr)
    return None


def _compare(expr: m.Compare) -> Row | None:
    op, left, right = expr.op, expr.left, expr.right
    if isinstance(left, m.History):
        return _history(left, op, right)
    if op in ("in", "not in") and (tag := _text(left)) is not None and (path := _path(right)):
        return Row(path, "has" if op == "in" else "has_not", tag)
    if isinstance(left, m.Call) and left.name == "days_since" and len(left.args) == 1:
        path, days = _path(left.args[0]), _number(right)
        if path and days is not None and op in _READ_DATE:
            return Row(path, _READ_DATE[op], days)
        return None
    path = _path(left)
    if path is None:
        return None
    return _about_path(path, op, right)


def _about_path(path: str, op: str, right: m.Expr) -> Row | None:
    if (text := _text(right)) is not None:
        ops = {"==": "is", "!=": "is_not", "contains": "contains"}
        return Row(path, ops[op], text) if op in ops else None
    if (number := _number(right)) is not None:
        return Row(path, _READ_NUMBER[op], number) if op in _READ_NUMBER else None
    if isinstance(right, m.Lit) and isinstance(right.value, bool) and op == "==":
        return Row(path, "yes" if right.value else "no")
    if isinstance(right, m.ListExpr) and op in ("in", "not in"):
        items = [_text(i) for i in right.items]
        if not items or any(i is None or "," in i or i != i.strip() or not i for i in items):
            return None
        return Row(path, "one_of" if op == "in" else "not_one_of", ", ".join(i for i in items if i))
    if (other := _path(right)) is not None and op in ("==", "!="):
        return Row(path, "same_as" if op == "==" else "not_same_as", other)
    return None


def _history(history: m.History, op: str, right: m.Expr) -> Row | None:
    count = _number(right)
    if count is None or op not in _READ_COUNT or not history.event:
        return None
    where = None
    if history.where is not None:
        where = row_of(history.where)
        if where is None or where.field == HISTORY or not where.field.startswith("event."):
            return None
    window, days = "ever", ""
    if history.window_seconds is not None:
        if history.window_seconds % DAY:
            return None
        window, days = "within", str(history.window_seconds // DAY)
    count_op = "none" if op == "==" and count == "0" else _READ_COUNT[op]
    return Row(HISTORY, "", "", history.event, where, window, days, count_op, count)


def read_text(text: str) -> Group | None:
    """The rows of a condition's text; None when it does not read or rows cannot say it."""
    if not text.strip():
        return Group()
    if "\n" in text or "\r" in text:
        return None
    try:
        audience = parse(_STAND_IN.format(text)).audience
    except JourneyError:
        return None
    return rows_of(audience.condition) if audience is not None else None


# --------------------------------------------------------------------------- writing: rows -> expression


def _as_path(text: str) -> m.Path:
    """The field's path; text that is no path still goes into the DSL as it is, so the checks
    name the problem rather than the editor dropping the row."""
    return m.Path(tuple(text.split(".")) if _PATH.match(text) else (text or "?",))


def _as_number(text: str) -> m.Expr:
    cleaned = text.strip()
    if _NUMBER.match(cleaned):
        number = float(cleaned)
        if math.isfinite(number):
            return m.Lit(int(cleaned) if re.fullmatch(r"-?\d+", cleaned) else number)
    return m.Path((cleaned or "?",))  # written as typed: the checks then say what is wrong


def _ago(op: str, path: m.Path, value: str) -> m.Expr:
    return m.Compare(DATE_OPS[op][1], m.Call("days_since", (path,)), _as_number(value))  # type: ignore[arg-type]


def _text_test(op: str, path: m.Path, value: str) -> m.Expr:
    dsl = TEXT_OPS[op][1]
    right: m.Expr
    if op in ("one_of", "not_one_of"):
        right = m.ListExpr(tuple(m.Lit(v.strip()) for v in value.split(",") if v.strip()))
    elif op in ("same_as", "not_same_as"):
        right = _as_path(value)
    else:
        right = m.Lit(value)
    return m.Compare(dsl, path, right)  # type: ignore[arg-type]


def row_expr(row: Row) -> m.Expr | None:
    """The row's expression; None for a row not filled in yet (no field or no operator)."""
    if row.field == HISTORY:
        return _history_expr(row)
    if not row.field or not row.op:
        return None
    path = _as_path(row.field)
    op = row.op
    if op == "set":
        return m.Call("exists", (path,))
    if op == "not_set":
        return m.Unary("not", m.Call("exists", (path,)))
    if op in TEXT_OPS:
        return _text_test(op, path, row.value)
    if op in NUMBER_OPS:
        return m.Compare(NUMBER_OPS[op][1], path, _as_number(row.value))  # type: ignore[arg-type]
    if op in BOOL_OPS:
        return m.Compare("==", path, m.Lit(op == "yes"))
    if op in DATE_OPS:
        return _ago(op, path, row.value)
    if op in LIST_OPS:
        return m.Compare(LIST_OPS[op][1], m.Lit(row.value), path)  # type: ignore[arg-type]
    return None


def _history_expr(row: Row) -> m.Expr | None:
    if not row.event.strip():
        return None
    where = row_expr(row.where) if row.where is not None else None
    window = None
    if row.window == "within":
        days = _as_number(row.days)
        window = int(days.value) * DAY if isinstance(days, m.Lit) and isinstance(days.value, int) else 0
    history = m.History(row.event.strip(), where, window)
    op = row.count_op if row.count_op in COUNT_OPS else "gte"
    count = m.Lit(0) if op == "none" else _as_number(row.count)
    return m.Compare(COUNT_OPS[op][1], history, count)  # type: ignore[arg-type]


def group_expr(group: Group) -> m.Expr | None:
    """The group's expression, its rows joined left to right; None when nothing is filled in.
    The formatter adds the parentheses a group inside a group needs."""
    parts = [e for e in (group_expr(i) if isinstance(i, Group) else row_expr(i) for i in group.items)
             if e is not None]
    if not parts:
        return None
    out = parts[0]
    for part in parts[1:]:
        out = m.Binary(_JOIN_OP.get(group.join, "and"), out, part)
    return out


def expr_text(group: Group) -> str:
    """The DSL text of the rows ("" when none is filled in)."""
    expr = group_expr(group)
    return format_expr(expr) if expr is not None else ""


# --------------------------------------------------------------------------- the form


def key(name: str, node: str, part: str) -> str:
    return f"{name}{SEP}{node}{SEP}{part}"


def mode_key(name: str) -> str:
    return f"{name}{SEP}mode"


def _children(form: Mapping[str, str], name: str, node: str) -> list[str]:
    """The ids of `node`'s direct children present in the form, in their order."""
    prefix = f"{name}{SEP}{node}."
    found: set[int] = set()
    for k in form:
        if k.startswith(prefix) and k.endswith(f"{SEP}kind"):
            head = k[len(prefix):-len(f"{SEP}kind")]
            if ascii_digits(head):
                found.add(int(head))
    return [f"{node}.{i}" for i in sorted(found)]


def _form_row(form: Mapping[str, str], name: str, node: str) -> Row:
    def get(part: str, default: str = "") -> str:
        return form.get(key(name, node, part), default)

    def test(prefix: str) -> tuple[str, str, str]:
        """Field, operator, value; a field just changed drops the operator and value that
        were chosen for the one before (they may not fit its type)."""
        chosen, previous = get(f"{prefix}field"), form.get(key(name, node, f"{prefix}prev"))
        if previous is not None and previous != chosen:
            return chosen, "", ""
        return chosen, get(f"{prefix}op"), get(f"{prefix}value")

    field_, op, value = test("")
    where = None
    if field_ == HISTORY and get("wfield"):
        where = Row(*test("w"))
    return Row(field_, op, value, get("event").strip(), where, get("window", "ever"),
               get("days").strip(), get("count_op", "gte"), get("count").strip())


def group_from_form(form: Mapping[str, str], name: str, node: str = TOP) -> Group:
    """The rows of editor `name` as the form submits them (rows not filled in included)."""
    items: list[Row | Group] = []
    for child in _children(form, name, node):
        kind = form.get(key(name, child, "kind"))
        items.append(group_from_form(form, name, child) if kind == "group" else _form_row(form, name, child))
    join = form.get(key(name, node, "join"), ALL)
    return Group(join if join in (ALL, ANY) else ALL, tuple(items))


def in_rows_mode(form: Mapping[str, str], name: str) -> bool:
    return form.get(mode_key(name)) == "rows"


def from_form(form: Mapping[str, str], name: str) -> str:
    """The DSL text editor `name` stands for: its rows written out in rows mode, else the
    text box (field `name`) as typed."""
    if not in_rows_mode(form, name):
        return form.get(name, "")
    return expr_text(group_from_form(form, name))


def editor_names(form: Mapping[str, str]) -> list[str]:
    suffix = f"{SEP}mode"
    return [k[: -len(suffix)] for k in form if k.endswith(suffix)]


def collect(form: Mapping[str, str], problems: Sequence[FieldError] = ()
            ) -> tuple[dict[str, str], list[FieldError]]:
    """The form with each condition editor's text in its own field, so the forms that turn
    fields into DSL read conditions from the fields they always did; and `problems` with what
    rows not finished lack, in plain words (the parser would only say the DSL is wrong)."""
    out, found = dict(form), list(problems)
    for name in editor_names(form):
        if in_rows_mode(form, name):
            group = group_from_form(form, name)
            out[name] = expr_text(group)
            found += [FieldError(name, message) for message in group_problems(group)]
    return out, found


def _words(path: str) -> str:
    return path.rsplit(".", 1)[-1].replace("_", " ") or path


def _is_number(text: str) -> bool:
    return isinstance(_as_number(text), m.Lit)


def row_problems(row: Row) -> list[str]:
    """What a row needs before it says something, for the marketer to read beside it."""
    if row.field == HISTORY:
        found = [] if row.event.strip() else ["has done an event: choose the event"]
        if row.window == "within" and not (ascii_digits(row.days) and int(row.days) > 0):
            found.append(f"has done {row.event or 'an event'}: a number of days, such as 30")
        if row.count_op != "none" and not ascii_digits(row.count):
            found.append(f"has done {row.event or 'an event'}: a number of times, such as 1")
        return found + (row_problems(row.where) if row.where is not None else [])
    what, op = _words(row.field), row.op
    if not row.field or not op:
        return []
    if (op in NUMBER_OPS or op in DATE_OPS) and not _is_number(row.value):
        return [f"{what}: a number of days, such as 30" if op in DATE_OPS else f"{what}: a number, such as 100"]
    if op in ("one_of", "not_one_of") and not any(v.strip() for v in row.value.split(",")):
        return [f"{what}: one value at least (several separated by commas)"]
    if op in ("same_as", "not_same_as") and not _PATH.match(row.value):
        return [f"{what}: choose the field to compare with"]
    return []


def group_problems(group: Group) -> list[str]:
    return [p for item in group.items
            for p in (group_problems(item) if isinstance(item, Group) else row_problems(item))]


# --------------------------------------------------------------------------- changes the buttons ask for


def _at(node: str) -> Sequence[int]:
    """A node id's index path: "r.1.0" is the first item of the top group's second."""
    return [int(p) for p in node.split(".")[1:]]


def _edit(group: Group, where: Sequence[int], change: str) -> Group:
    """`group` with the node at index path `where` changed: "add", "add_group" (inside the
    group there) or "remove" (that node)."""
    if not where:
        if change == "add":
            return replace(group, items=(*group.items, Row()))
        if change == "add_group":
            inner = ANY if group.join == ALL else ALL
            return replace(group, items=(*group.items, Group(inner, (Row(),))))
        return group
    head, rest = where[0], where[1:]
    if not 0 <= head < len(group.items):
        return group
    items = list(group.items)
    if not rest and change == "remove":
        del items[head]
    elif isinstance(items[head], Group):
        child = items[head]
        assert isinstance(child, Group)
        items[head] = _edit(child, rest, change)
    return replace(group, items=tuple(items))


def apply_action(group: Group, action: str) -> Group:
    """An action from a button: "add:r.1", "add_group:r", "remove:r.0.2"."""
    change, _, node = action.partition(":")
    if change not in ("add", "add_group", "remove") or not node.startswith(TOP):
        return group
    try:
        return _edit(group, _at(node), change)
    except ValueError:
        return group


# --------------------------------------------------------------------------- what the template shows


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class RowView:
    is_group: ClassVar[bool] = False
    node: str
    row: Row
    fields: tuple[Choice, ...]
    ops: tuple[Choice, ...]
    value: str  # "none" | "number" | "text" | "select" | "days" | "field"
    values: tuple[Choice, ...] = ()
    events: tuple[Choice, ...] = ()  # HISTORY rows
    where: RowView | None = None  # HISTORY rows: the test on the event
    count_ops: tuple[Choice, ...] = ()
    windows: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class GroupView:
    is_group: ClassVar[bool] = True
    node: str
    join: str
    items: tuple[RowView | GroupView, ...]
    depth: int


def _choices(options: Sequence[tuple[str, str]], current: str) -> tuple[Choice, ...]:
    listed = tuple(Choice(v, label, v == current) for v, label in options)
    if current and all(c.value != current for c in listed):
        listed += (Choice(current, current, True),)
    return listed


def _kind(row: Row, found: Field | None) -> str:
    """The row's operator says the type it was written with (a text field compared with a
    number stays a number row); a row without one takes its field's."""
    by_op = type_of_op(row.op)
    if by_op is not None:
        return by_op
    if found is not None and found.type in OPS_BY_TYPE:
        return found.type
    return "text"


def _field_choices(fields: Fields, event: str | None, current: str, history: bool) -> tuple[Choice, ...]:
    options = [("", "choose…")]
    if event:
        options += [(f.path, f"{f.label or f.name} (event)") for f in fields.of_event(event)]
    options += [(f.path, f.label or f.name) for f in fields.all_traits()]
    if history:
        options.append((HISTORY, "has done an event…"))
    return _choices(options, current)


def _value_view(row: Row, kind: str, found: Field | None, fields: Fields) -> tuple[str, tuple[Choice, ...]]:
    op = row.op
    if op in PRESENCE_OPS or op in BOOL_OPS or not op:
        return "none", ()
    if op in ("same_as", "not_same_as"):
        return "field", _choices([("", "choose…")] + [(f.path, f.label or f.name) for f in fields.all_traits()],
                                 row.value)
    if kind == "date":
        return "days", ()
    if kind == "number":
        return "number", ()
    known = found.values if found is not None else ()
    if known and op not in ("one_of", "not_one_of", "contains"):
        return "select", _choices([("", "choose…")] + [(v, v) for v in known], row.value)
    return "text", ()


def row_view(row: Row, node: str, fields: Fields, event: str | None, events: Sequence[str],
             history: bool = True) -> RowView:
    """A row with the menus it shows: the operators fit the field's type, and the operator
    shown is the row's when it fits, else the type's first."""
    if row.field == HISTORY:
        return _history_view(row, node, fields, events)
    found = fields.by_path(row.field, event)
    kind = _kind(row, found)
    ops = OPS_BY_TYPE[kind]
    op = row.op if row.op in ops else next(iter(ops))
    row = replace(row, op=op) if row.field else replace(row, op="")
    value, values = _value_view(row, kind, found, fields)
    return RowView(node, row, _field_choices(fields, event, row.field, history),
                   _choices([(k, words) for k, (words, _) in ops.items()], op) if row.field else (), value, values)


def _history_view(row: Row, node: str, fields: Fields, events: Sequence[str]) -> RowView:
    where = row.where or Row()
    sub = row_view(where, node, fields, row.event or None, events, history=False)
    sub = replace(sub, fields=tuple(c for c in sub.fields if c.value == "" or c.value.startswith("event.")))
    return RowView(node, row, _field_choices(fields, None, HISTORY, True), (), "none",
                   events=_choices([("", "choose…")] + [(e, e) for e in events], row.event),
                   where=sub,
                   count_ops=_choices([(k, words) for k, (words, _) in COUNT_OPS.items()], row.count_op),
                   windows=_choices(list(WINDOWS.items()), row.window))


def group_view(group: Group, fields: Fields, event: str | None, events: Sequence[str],
               node: str = TOP, depth: int = 0) -> GroupView:
    items: list[RowView | GroupView] = []
    for i, item in enumerate(group.items):
        child = f"{node}.{i}"
        items.append(group_view(item, fields, event, events, child, depth + 1) if isinstance(item, Group)
                     else row_view(item, child, fields, event, events))
    return GroupView(node, group.join, tuple(items), depth)


@dataclass(frozen=True)
class EditorView:
    name: str
    mode: str  # "rows" or "text"
    text: str  # the DSL text, for text mode and the hidden field
    group: GroupView | None
    forced_text: bool  # the text cannot be shown as rows
    event: str
    drawn: int = 0  # how many times the route redrew it: a test (or a script) knows the redraw has landed


def editor_view(name: str, text: str, fields: Fields, event: str | None, *, as_text: bool = False,
                group: Group | None = None, drawn: int = 0) -> EditorView:
    """What editor `name` shows: the rows of `group` (rows being edited) or of `text`; text
    mode when asked for, or when rows cannot say the text. A branch's `false` (what "+ branch"
    gives a new else-if, so nobody goes down it until it has a condition) is shown as a row to
    fill in: the marketer's next step, not a text to decipher."""
    rows = group if group is not None else Group() if text.strip() == NOBODY else read_text(text)
    events = sorted(fields.events)
    if rows is None or as_text:
        return EditorView(name, "text", text, None, rows is None, event or "", drawn)
    if not rows.items:
        rows = Group(ALL, (Row(),))
    return EditorView(name, "rows", expr_text(rows), group_view(rows, fields, event, events), False, event or "",
                      drawn)


class Editors:
    """What the panels' templates call to show a condition editor, knowing the fields."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields

    def view(self, values: Mapping[str, str], name: str, event: str = "") -> EditorView:
        """The editor for `values`: a form sent back (a refused Apply) shows its rows as they
        were, finished or not; a panel just opened reads the condition's text."""
        as_text = values.get(mode_key(name)) == "text"
        sent = in_rows_mode(values, name) and bool(_children(values, name, TOP))
        group = group_from_form(values, name) if sent else None
        return editor_view(name, values.get(name, ""), self.fields, event or None, as_text=as_text, group=group)

    @staticmethod
    def trigger_event(journey: m.Journey | None) -> str:
        """The event an `if` step's rows may name: the trigger's, when every trigger is that
        one event (then `event.*` in the steps is the event that started the run)."""
        names = {t.event for t in journey.triggers if isinstance(t, m.EventTrigger)} if journey else set()
        events_only = journey is not None and all(isinstance(t, m.EventTrigger) for t in journey.triggers)
        return names.pop() if events_only and len(names) == 1 else ""
