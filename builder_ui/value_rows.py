"""Typed values and webhook body rows: the update and webhook forms, to and from the DSL.

A marketer picks "number" and types 100, or picks "the event's property" and chooses
`amount`: the form never shows an expression. The DSL stays the source of truth, so each
control reads its value back from the step's expression and writes exactly the DSL an author
would (`user.points += 100`, `{"data": {"name": user.first_name}}`). What the controls cannot
show (arithmetic, function calls, a list of objects) is kept as DSL text, marked "edited as
text", rather than lost or mangled.

Pure: no I/O. The form posts repeated row fields; `collect` folds them into the single
`value`, `field` and `body` fields that `forms.py` reads, so the parser keeps the last word.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dsl import JourneyError, parse
from dsl import model as m
from dsl.formatter import format_expr, format_number, format_string
from dsl.numerals import ascii_digits

from .forms import FieldError

OTHER = "__other__"  # a select's "other…" choice: the name is in the box beside it
SCALAR_KINDS = ("text", "number", "bool", "event", "user", "result")
VALUE_KINDS = (*SCALAR_KINDS, "dsl")
BODY_KINDS = (*VALUE_KINDS, "group", "list")
KIND_LABELS = {"text": "text", "number": "number", "bool": "yes/no", "event": "the event's property …",
               "user": "the profile's field …",
               "result": "an earlier step's result …", "dsl": "edited as text", "group": "a group of fields",
               "list": "a list"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_STAND_IN = 'journey "value"\n  trigger api\n\n  update user.value = '
NUMBER_HINT = "a number, such as 100 or 2.5"


@dataclass(frozen=True)
class Typed:
    """A value as the form shows it: its kind and what is in its box (the text, the number as
    written, "true"/"false", a field name without `user.`/`event.`, or DSL for "dsl")."""

    kind: str
    value: str


@dataclass(frozen=True)
class Row:
    """One line of a webhook body. A "group" or "list" row opens the rows one deeper that
    follow it; a list's items have no key."""

    depth: int
    key: str
    kind: str
    value: str = ""


# --------------------------------------------------------------------------- DSL -> form


def parse_value(text: str) -> m.Expr | None:
    """The expression `text` holds, read by the real parser; None when it does not read."""
    if not text.strip() or "\n" in text or "\r" in text:
        return None
    try:
        step = parse(_STAND_IN + text + "\n").steps[0]
    except JourneyError:
        return None
    return step.value if isinstance(step, m.UpdateProfile) else None


def typed_of(expr: m.Expr) -> Typed:
    """How the form shows `expr`: one of the typed boxes, or its DSL when none fits."""
    match expr:
        case m.Lit(value=bool() as flag):
            return Typed("bool", "true" if flag else "false")
        case m.Lit(value=str() as text):
            return Typed("text", text)
        case m.Lit(value=int() | float() as number):
            return Typed("number", format_number(number))
        case m.Unary(op="-", operand=m.Lit(value=int() | float() as number)) if not isinstance(number, bool):
            return Typed("number", "-" + format_number(number))
        case m.Path(parts=(("user" | "event") as root, *rest)) if rest:
            return Typed(root, ".".join(rest))
        case m.Path(parts=(_, _, *_) as parts):
            return Typed("result", ".".join(parts))
    return Typed("dsl", format_expr(expr))


def typed_of_text(text: str) -> Typed:
    """The typed value of a form's `value` field; what does not read stays as text."""
    expr = parse_value(text)
    return typed_of(expr) if expr is not None else Typed("dsl", text)


def rows_of(body: m.Expr) -> list[Row] | None:
    """The rows of a body; None when the body is not an object (it is then edited as text)."""
    if not isinstance(body, m.ObjectExpr):
        return None
    return list(_object_rows(body, 0))


def _object_rows(obj: m.ObjectExpr, depth: int) -> Iterable[Row]:
    for key, value in obj.items:
        yield from _value_rows(key, value, depth)


def _value_rows(key: str, value: m.Expr, depth: int) -> Iterable[Row]:
    if isinstance(value, m.ObjectExpr):
        yield Row(depth, key, "group")
        yield from _object_rows(value, depth + 1)
        return
    if isinstance(value, m.ListExpr):
        items = [typed_of(item) for item in value.items]
        if all(t.kind in SCALAR_KINDS for t in items):
            yield Row(depth, key, "list")
            yield from (Row(depth + 1, "", t.kind, t.value) for t in items)
            return
    typed = typed_of(value)
    yield Row(depth, key, typed.kind, typed.value)


def rows_of_text(text: str) -> list[Row] | None:
    """The rows of a form's `body` field: [] for no body, None when it is edited as text."""
    if not text.strip():
        return []
    expr = parse_value(text)
    return rows_of(expr) if expr is not None else None


# --------------------------------------------------------------------------- form -> DSL


def typed_dsl(typed: Typed) -> tuple[str, str | None]:
    """The DSL of a typed value, and the problem in words when the box does not hold one."""
    value = typed.value.strip()
    match typed.kind:
        case "text":
            return format_string(typed.value), None
        case "number":
            return value, None if _NUMBER.match(value) else NUMBER_HINT
        case "bool":
            return ("true" if value == "true" else "false"), None
        case "event" | "user":
            if not _NAME.match(value):
                return f"{typed.kind}.{value}", "choose a field, or write its name under “other…”"
            return f"{typed.kind}.{value}", None
        case "result":
            return value, None if _NAME.match(value) and "." in value else "choose an earlier step's result"
    return value, None if value else "write the value"


def rows_dsl(rows: Sequence[Row]) -> tuple[str, list[str]]:
    """The body the rows describe ("" for none), and the problems in words."""
    if not rows:
        return "", []
    problems: list[str] = []
    text, _ = _object_dsl(rows, 0, rows[0].depth, problems)
    return text, problems


def _children(rows: Sequence[Row], start: int, depth: int) -> int:
    """The end of the rows deeper than `depth` from `start`: the rows a group or list holds."""
    end = start
    while end < len(rows) and rows[end].depth > depth:
        end += 1
    return end


def _object_dsl(rows: Sequence[Row], start: int, depth: int, problems: list[str]) -> tuple[str, int]:
    parts: list[str] = []
    keys: set[str] = set()
    i = start
    while i < len(rows) and rows[i].depth >= depth:
        row = rows[i]
        key = row.key.strip()
        if not key:
            problems.append("a field of the body has no name")
        elif key in keys:
            problems.append(f"the body names “{key}” twice")
        keys.add(key)
        value, i = _row_dsl(rows, i, problems)
        parts.append(f"{format_string(key)}: {value}")
    return "{" + ", ".join(parts) + "}", i


def _row_dsl(rows: Sequence[Row], i: int, problems: list[str]) -> tuple[str, int]:
    """The DSL of row `i` (with the rows it holds), and the index after them."""
    row = rows[i]
    end = _children(rows, i + 1, row.depth)
    if row.kind == "group":
        return (_object_dsl(rows, i + 1, row.depth + 1, problems)[0] if end > i + 1 else "{}"), end
    if row.kind == "list":
        items = []
        j = i + 1
        while j < end:
            item, j = _row_dsl(rows, j, problems)
            items.append(item)
        return "[" + ", ".join(items) + "]", end
    value, problem = typed_dsl(Typed(row.kind, row.value))
    if problem:
        problems.append(f"“{row.key.strip() or 'a list item'}”: {problem}")
    return value, end


# --------------------------------------------------------------------------- the posted form


def collect(items: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[FieldError]]:
    """The form's fields as `forms.py` reads them: the typed value's boxes folded into `value`,
    the field select into `field`, the body rows into `body`; with what they could not say."""
    flat: dict[str, str] = {}
    multi: dict[str, list[str]] = defaultdict(list)
    for name, value in items:
        flat[name] = value
        multi[name].append(value)
    errors: list[FieldError] = []
    if "field_pick" in flat:
        pick = flat["field_pick"]
        flat["field"] = flat.get("field_other", "").strip() if pick == OTHER else pick
    if "upd_kind" in flat:
        raw = flat.get("upd_value", "")
        chosen = flat.get("upd_value_other", "") if raw == OTHER else raw
        flat["value"], problem = typed_dsl(Typed(flat["upd_kind"], chosen))
        if problem and flat["upd_kind"] != "dsl":
            errors.append(FieldError("value", problem))
    if flat.get("body_mode") == "rows":
        rows, problem = _posted_rows(multi)
        flat["body"], problems = rows_dsl(rows)
        errors += [FieldError("body", p) for p in ([problem] if problem else []) + problems]
    return flat, errors


def _posted_rows(multi: Mapping[str, list[str]]) -> tuple[list[Row], str | None]:
    names = ("body_depth", "body_key", "body_kind", "body_value", "body_other")
    columns = [multi.get(name, []) for name in names]
    if len({len(c) for c in columns}) > 1:
        return [], "the body's rows arrived incomplete: close the step and open it again"
    rows = []
    for depth, key, kind, value, other in zip(*columns, strict=True):
        level = int(depth) if ascii_digits(depth) else 0
        rows.append(Row(level, key, kind if kind in BODY_KINDS else "dsl", other if value == OTHER else value))
    return _levelled(rows), None


def _levelled(rows: list[Row]) -> list[Row]:
    """Rows whose depth never jumps by more than one, so that a row's place says its parent."""
    out: list[Row] = []
    for row in rows:
        deepest = out[-1].depth + 1 if out and out[-1].kind in ("group", "list") else (out[-1].depth if out else 0)
        out.append(Row(min(row.depth, deepest), row.key, row.kind, row.value))
    return out


# --------------------------------------------------------------------------- the panel's view


def view(values: Mapping[str, str]) -> dict[str, object]:
    """What the update and webhook sections show for the form's current `value` and `body`."""
    if values.get("kind") == "update":
        return {"upd": typed_of_text(values.get("value", ""))}
    if values.get("kind") == "webhook":
        rows = rows_of_text(values.get("body", ""))
        return {"body_rows": None if rows is None else _shown(rows)}
    return {}


def _shown(rows: Sequence[Row]) -> list[dict[str, object]]:
    """The rows as the template draws them: a list's items have no name to show."""
    out: list[dict[str, object]] = []
    parents: list[Row] = []  # the open groups and lists, outermost first
    for row in rows:
        del parents[row.depth:]
        in_list = bool(parents) and parents[-1].kind == "list"
        out.append({"depth": row.depth, "key": row.key, "kind": row.kind, "value": row.value, "in_list": in_list})
        if row.kind in ("group", "list"):
            parents.append(row)
    return out
