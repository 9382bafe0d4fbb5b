"""Expressions to closures: each `dsl.model.Expr` becomes a Python function of a `Scope`, once.

Why closures: a journey's conditions run for every event of every user, so the expression
tree is walked once per journey version (here) and never per evaluation; what is left at run
time is a chain of plain calls.

Why total: the data comes from customers' profiles and events, whose shapes nobody controls.
A condition over a missing field or a field of the wrong type is false, and a value computed
from one is None; it is never an exception that would stop a user's run. (Only the `History`
behind `count of` may raise: a storage failure is not a fact about the user.)

One rule for time runs through the module: a naive datetime means UTC.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from dsl import model as m
from dsl.validate import FUNCTIONS

from .scope import EventPredicate, Scope

Compiled = Callable[[Scope], Any]
Predicate = Callable[[Scope], bool]
Operator = Callable[[Any, Any], Any]

SECONDS_PER_DAY = 86_400


def compile_expr(expr: m.Expr) -> Compiled:
    """The expression as a function of a scope. Expects a validated expression: an unknown
    function or a wrong number of arguments raises ValueError here, never at evaluation."""
    match expr:
        case m.Lit(value=value):
            return _constant(value)
        case m.Dur(seconds=seconds):
            return _constant(seconds)
        case m.Path(parts=parts):
            return _path(parts)
        case m.Call():
            return _call(expr)
        case m.Unary(op=op, operand=operand):
            return _unary(op, compile_expr(operand))
        case m.Binary(op="and", left=left, right=right):
            return _and(compile_expr(left), compile_expr(right))
        case m.Binary(op="or", left=left, right=right):
            return _or(compile_expr(left), compile_expr(right))
        case m.Compare(op="==" | "!=" as op, left=left, right=m.Lit(value=value)) if _plain(value):
            return _compare_to(op, compile_expr(left), value)
        case m.Compare(op="in" | "not in" as op, left=left, right=m.ListExpr(items=items)) if (
                texts := _texts(items)) is not None:
            return _among(op, compile_expr(left), texts)
        case m.Binary(op=op, left=left, right=right) | m.Compare(op=op, left=left, right=right):
            return _apply(_OPERATORS[op], compile_expr(left), compile_expr(right))
        case m.ListExpr(items=items):
            return _list(tuple(compile_expr(item) for item in items))
        case m.ObjectExpr(items=pairs):
            return _object(tuple((key, compile_expr(value)) for key, value in pairs))
        case m.History():
            return _history(expr)
    raise TypeError(f"not an expression: {expr!r}")


def always(scope: Scope) -> bool:
    """The predicate of an absent condition (no `where`, no `audience`)."""
    return True


def compile_predicate(expr: m.Expr | None) -> Predicate:
    """The expression as a yes/no question, by truthiness; None (no condition) is always yes."""
    if expr is None:
        return always
    compiled = compile_expr(expr)
    if isinstance(expr, m.Compare) or (isinstance(expr, m.Unary | m.Binary) and expr.op in ("not", "and", "or")):
        return compiled  # already a bool
    return lambda scope: bool(compiled(scope))


# --------------------------------------------------------------------------- building blocks


def _constant(value: Any) -> Compiled:
    return lambda scope: value


def _apply(op: Operator, left: Compiled, right: Compiled) -> Compiled:
    return lambda scope: op(left(scope), right(scope))


# The commonest conditions, `user.city == "上海"`, `event.total >= 100`... compare a value with a
# literal; audiences and triggers ask them for every event of every user who could enter. For a
# literal text or number, `_equal` reduces to one type test and `==`, and membership in a list
# of literal texts to a set lookup: those are built here as such (tests/engine/test_expressions.py
# checks they agree with the general operators on any value).


def _plain(value: Any) -> bool:
    return isinstance(value, str) or _is_number(value)


def _texts(items: tuple[m.Expr, ...]) -> frozenset[str] | None:
    """The texts of a list of literal texts; None for any other list."""
    found = [item.value for item in items if isinstance(item, m.Lit) and isinstance(item.value, str)]
    return frozenset(found) if items and len(found) == len(items) else None


def _compare_to(op: str, left: Compiled, value: Any) -> Compiled:
    if isinstance(value, str):
        if op == "==":
            return lambda scope: isinstance(found := left(scope), str) and found == value
        return lambda scope: not (isinstance(found := left(scope), str) and found == value)
    if op == "==":
        return lambda scope: _is_number(found := left(scope)) and found == value
    return lambda scope: not (_is_number(found := left(scope)) and found == value)


def _among(op: str, left: Compiled, texts: frozenset[str]) -> Compiled:
    if op == "in":
        return lambda scope: isinstance(found := left(scope), str) and found in texts
    return lambda scope: not (isinstance(found := left(scope), str) and found in texts)


def _and(left: Compiled, right: Compiled) -> Compiled:
    return lambda scope: bool(left(scope)) and bool(right(scope))


def _or(left: Compiled, right: Compiled) -> Compiled:
    return lambda scope: bool(left(scope)) or bool(right(scope))


def _unary(op: m.UnaryOp, operand: Compiled) -> Compiled:
    if op == "not":
        return lambda scope: not operand(scope)
    return lambda scope: _negate(operand(scope))


def _list(items: tuple[Compiled, ...]) -> Compiled:
    return lambda scope: [item(scope) for item in items]


def _object(pairs: tuple[tuple[str, Compiled], ...]) -> Compiled:
    return lambda scope: {key: value(scope) for key, value in pairs}


# --------------------------------------------------------------------------- paths


def _path(parts: tuple[str, ...]) -> Compiled:
    """`user.*` and `event.*` read the scope; any other root is a named step result."""
    root, rest = parts[0], parts[1:]
    base = _ROOTS.get(root) or _result(root)
    if not rest:
        return base
    if len(rest) == 1:
        key = rest[0]
        if root == "user":  # one call fewer for the commonest paths
            return lambda scope: _get(scope.user, key)
        if root == "event":
            return lambda scope: _get(scope.event, key)
        return lambda scope: _get(base(scope), key)
    return lambda scope: _dig(base(scope), rest)


def _user(scope: Scope) -> Any:
    return scope.user


def _event(scope: Scope) -> Any:
    return scope.event


_ROOTS: dict[str, Compiled] = {"user": _user, "event": _event}


def _result(name: str) -> Compiled:
    return lambda scope: _get(scope.results, name)


def _get(value: Any, key: str) -> Any:
    if type(value) is dict:  # the common case, without the slower ABC check
        return value.get(key)
    return value.get(key) if isinstance(value, Mapping) else None


def _dig(value: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = _get(value, key)
    return value


# --------------------------------------------------------------------------- values


_NUMBERS = (int, float)
_SEQUENCES = (list, tuple)
_COLLECTIONS = (list, tuple, set, frozenset)
_SIZED = (str, list, tuple, Mapping)


def _is_number(value: Any) -> bool:
    """int and float but not bool: `true` is never a number here, unlike in Python."""
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None or value.utcoffset() is None else value


def _equal(a: Any, b: Any) -> bool:
    """Python's `==`, except that a bool equals only a bool, a list equals a tuple of equal
    items (JSON has one kind of sequence) and a naive datetime is read as UTC; nested
    values follow the same rules."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and a == b
    if isinstance(a, datetime) and isinstance(b, datetime):
        return _utc(a) == _utc(b)
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(value, b[key]) for key, value in a.items())
    try:
        return bool(a == b)
    except Exception:
        return False


def _eq(a: Any, b: Any) -> bool:
    try:
        return _equal(a, b)
    except RecursionError:  # absurdly deep data
        return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Numbers with numbers, text with text, times with times; anything else is False."""

    def ordered(a: Any, b: Any) -> bool:
        if (_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str)):
            return compare(a, b)
        if isinstance(a, datetime) and isinstance(b, datetime):
            return compare(_utc(a), _utc(b))
        return False

    return ordered


def _in(item: Any, container: Any) -> bool:
    """Membership in a list (by `_equal`), or text in text; anything else is False."""
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, _COLLECTIONS):
        try:
            return any(_equal(item, member) for member in container)
        except RecursionError:
            return False
    return False


def _not_in(item: Any, container: Any) -> bool:
    return not _in(item, container)


def _contains(container: Any, item: Any) -> bool:
    return _in(item, container)


# --------------------------------------------------------------------------- arithmetic
# Overflow (a huge int meeting a float, a date past year 9999) gives None like any bad mix, and
# so does an integer result past MAX_INT_BITS: Python's integers grow without limit, and a
# condition run for every event must not spend its time multiplying numbers nobody has.

_TOO_BIG = (ArithmeticError, ValueError)
MAX_INT_BITS = 4_096


def _ints(a: Any, b: Any) -> bool:
    return isinstance(a, int) and isinstance(b, int)


def _add(a: Any, b: Any) -> Any:
    try:
        if _ints(a, b) and max(a.bit_length(), b.bit_length()) >= MAX_INT_BITS:
            return None
        if _is_number(a) and _is_number(b):
            return a + b
        if isinstance(a, datetime) and _is_number(b):
            return a + timedelta(seconds=b)
        if _is_number(a) and isinstance(b, datetime):
            return b + timedelta(seconds=a)
    except _TOO_BIG:
        pass
    return None


def _sub(a: Any, b: Any) -> Any:
    try:
        if _is_number(a) and _is_number(b):
            return a - b
        if isinstance(a, datetime) and isinstance(b, datetime):
            return (_utc(a) - _utc(b)).total_seconds()
        if isinstance(a, datetime) and _is_number(b):
            return a - timedelta(seconds=b)
    except _TOO_BIG:
        pass
    return None


def _mul(a: Any, b: Any) -> Any:
    if _ints(a, b) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        return None
    try:
        return a * b if _is_number(a) and _is_number(b) else None
    except _TOO_BIG:
        return None


def _div(a: Any, b: Any) -> Any:
    if _ints(a, b) and max(a.bit_length(), b.bit_length()) > MAX_INT_BITS:
        return None
    try:
        return a / b if _is_number(a) and _is_number(b) and b != 0 else None
    except _TOO_BIG:
        return None


def _negate(value: Any) -> Any:
    return -value if _is_number(value) else None


_OPERATORS: dict[str, Operator] = {
    "==": _eq,
    "!=": _ne,
    "<": _ordering(operator.lt),
    "<=": _ordering(operator.le),
    ">": _ordering(operator.gt),
    ">=": _ordering(operator.ge),
    "in": _in,
    "not in": _not_in,
    "contains": _contains,
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
}


# --------------------------------------------------------------------------- functions


def _exists(value: Any) -> bool:
    return value is not None


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _len(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 0


_VALUE_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "exists": _exists,
    "lower": _lower,
    "upper": _upper,
    "len": _len,
}


def _call(call: m.Call) -> Compiled:
    if FUNCTIONS.get(call.name) != len(call.args):
        raise ValueError(f"{call.name}() with {len(call.args)} argument(s) is not a function of the language")
    if call.name == "now":
        return _now
    (argument,) = (compile_expr(arg) for arg in call.args)
    if call.name == "days_since":
        return lambda scope: _days_since(argument(scope), scope.now)
    function = _VALUE_FUNCTIONS[call.name]
    return lambda scope: function(argument(scope))


def _now(scope: Scope) -> datetime:
    return scope.now


def _days_since(value: Any, now: datetime) -> float | None:
    """Days (with a fraction) from `value` to now. `value` is a datetime, an ISO-8601 text
    (profiles are JSON) or epoch seconds; anything else, or nonsense, is None."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    try:
        if isinstance(value, datetime):
            return (_utc(now) - _utc(value)).total_seconds() / SECONDS_PER_DAY
        if not _is_number(value):
            return None
        days = (_utc(now).timestamp() - value) / SECONDS_PER_DAY
    except _TOO_BIG:
        return None
    return days if math.isfinite(days) else None


# --------------------------------------------------------------------------- history


def _history(node: m.History) -> Compiled:
    """`count of "e" where P within W`: asks `scope.history`, with P evaluated against each
    stored event's properties as `event` and the outer scope's user and results."""
    where = None if node.where is None else compile_predicate(node.where)
    window = _window(node.window_seconds)
    name = node.event

    def count(scope: Scope) -> Any:
        predicate = None if where is None else _bind(where, scope)
        return scope.history.count(name, predicate, _since(scope.now, window))

    return count


def _window(seconds: int | None) -> timedelta | None:
    """None for `ever`, and for a window longer than the calendar, which is the same thing."""
    try:
        return None if seconds is None else timedelta(seconds=seconds)
    except OverflowError:
        return None


def _since(now: datetime, window: timedelta | None) -> datetime | None:
    try:
        return None if window is None else now - window
    except OverflowError:  # reaches before year 1: every event counts
        return None


def _bind(where: Predicate, outer: Scope) -> EventPredicate:
    def holds(properties: Mapping[str, Any]) -> bool:
        return where(Scope(outer.user, outer.now, properties, outer.results, outer.history))

    return holds
