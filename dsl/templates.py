"""The message-template language: Jinja2, sandboxed and bounded. One definition for the checker
(`dsl.validate`, the builder) and the renderer (`actions.templates`).

Templates are written by anyone with a login, and Jinja2 as shipped trusts its author: it folds
constant expressions while compiling (`{{ 9 ** 12000000 }}` ran for twenty seconds inside a
journey check, holding the GIL), repeats and pads text without limit, and its sandbox renders
unsafe attribute access as blank text. So here:

- nothing is evaluated while parsing or compiling: no optimizer, no folding of output;
- every operator, call, lookup, filter and loop turn goes through a hook that bounds what it is
  about to build *before* building it (power and products by bit length, repetition and
  concatenation by size, widths and paddings by `MAX_WIDTH`), and counts against a per-render
  budget of loop turns, operations, text produced and time;
- attribute access is an allow-list, and unsafe access raises instead of rendering as "";
- `check` reads a template without running it and reports, for the journey checker, syntax
  errors, unsafe access and the bounds that constants already break.

Pure: no I/O. `render` takes the clock it measures the time budget with.
"""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, wraps
from typing import Any, NamedTuple

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, _PassArg

MAX_SOURCE_CHARS = 10_000  # a template's own text
MAX_TEXT_CHARS = 10_000  # any one text a template builds
MAX_ITEMS = 1_000  # any one list a template builds, and range()
MAX_INT_BITS = 4_096  # any one integer a template computes
MAX_WIDTH = 200  # widths, precisions, indents and batch sizes
MAX_ITERATIONS = 10_000  # loop turns per render, all loops together
MAX_OPERATIONS = 50_000  # operators, calls, lookups and filters per render
MAX_PRODUCED_CHARS = 100_000  # text written per render, captured blocks and macro bodies included
TIME_BUDGET_SECONDS = 0.5

# What a message may call on the values it is given: reading, never building big things.
STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha", "isdecimal",
    "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "lower", "lstrip", "removeprefix",
    "removesuffix", "rfind", "rindex", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
    "swapcase", "title", "upper",
})
MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
SEQUENCE_METHODS = frozenset({"count", "index"})
CYCLER_ATTRIBUTES = frozenset({"current", "next", "reset"})
# Known ways out of the sandbox, refused even where an allow-list would not see them.
DANGEROUS_ATTRIBUTES = frozenset({
    "format", "format_map", "mro", "func_globals", "func_code", "gi_frame", "gi_code", "cr_frame", "cr_code",
    "ag_frame", "ag_code", "f_globals", "f_locals", "f_builtins", "tb_frame",
})
REMOVED_FILTERS = frozenset({"pprint", "urlize", "xmlattr"})  # debugging and HTML output: no message needs them

_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%]?)")


class TemplateRefused(SecurityError):
    """The template may not be rendered as a message: the message says what it did."""


class TemplateLimit(TemplateRefused):
    """The template went past one of the bounds above: the message names the bound."""


# --------------------------------------------------------------------------- the budget


class _Budget:
    """What one render has spent. Counted in the sandbox's hooks, which every operator, call,
    lookup, filter, loop turn and piece of output goes through."""

    def __init__(self, clock: Callable[[], float], seconds: float) -> None:
        self.clock = clock
        self.deadline = clock() + seconds
        self.seconds = seconds
        self.operations = 0
        self.turns = 0
        self.produced = 0

    def operation(self) -> None:
        self.operations += 1
        if self.operations > MAX_OPERATIONS:
            raise TemplateLimit(f"the template does too much: more than {MAX_OPERATIONS} operations in one message")
        if self.clock() > self.deadline:
            raise TemplateLimit(f"the template took longer than {self.seconds:g} s to render")

    def turn(self) -> None:
        self.turns += 1
        if self.turns > MAX_ITERATIONS:
            raise TemplateLimit(f"the template's loops turn more than {MAX_ITERATIONS} times in all")
        self.operation()

    def wrote(self, chars: int) -> None:
        self.produced += chars
        if self.produced > MAX_PRODUCED_CHARS:
            raise TemplateLimit(f"the template writes more than {MAX_PRODUCED_CHARS} characters")


_BUDGET: ContextVar[_Budget | None] = ContextVar("journeyflow_template_budget", default=None)


def _operation() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.operation()


# --------------------------------------------------------------------------- bounded values


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _brief(value: Any) -> str:
    """A value as a refusal names it: short, and computed without converting a huge int."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def shown_size(value: Any, limit: int = MAX_TEXT_CHARS) -> int:
    """About how long `str(value)` is, at least; stops counting once past `limit`, so that a
    value can be refused before it is turned into text."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 4
        elif isinstance(item, int):
            total += item.bit_length() // 4 + 1
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            stack += list(item)
        else:
            total += 8
        if total > limit:
            break
    return total


def _text_size(size: int, what: str) -> None:
    if size > MAX_TEXT_CHARS:
        raise TemplateLimit(f"{what} would be longer than {MAX_TEXT_CHARS} characters")


def _items(size: int, what: str) -> None:
    if size > MAX_ITEMS:
        raise TemplateLimit(f"{what} would hold more than {MAX_ITEMS} items")


def power(base: Any, exponent: Any) -> Any:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1 \
            and base.bit_length() * exponent > MAX_INT_BITS:
        raise TemplateLimit(f"{_brief(base)} ** {_brief(exponent)} would be a number of more than "
                            f"{MAX_INT_BITS} bits")
    return base ** exponent


def multiply(left: Any, right: Any) -> Any:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"{_brief(left)} * {_brief(right)} would be a number of more than "
                                f"{MAX_INT_BITS} bits")
    else:
        sequence, times = (left, right) if _is_int(right) else (right, left)
        if _is_int(times) and times > 0:
            if isinstance(sequence, str):
                _text_size(len(sequence) * times, f"repeating a text {_brief(times)} times")
            elif isinstance(sequence, list | tuple):
                _items(len(sequence) * times, f"repeating a list {_brief(times)} times")
    return left * right


def add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        _text_size(len(left) + len(right), "the joined text")
    elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
        _items(len(left) + len(right), "the joined list")
    elif _is_int(left) and _is_int(right) and max(left.bit_length(), right.bit_length()) >= MAX_INT_BITS:
        raise TemplateLimit(f"a sum would be a number of more than {MAX_INT_BITS} bits")
    return left + right


def _printf_checked(pattern: str, arguments: Any) -> None:
    """Refuse a %-format whose widths or precisions, or whose arguments, would make big text."""
    conversions = 0
    for spec in _PRINTF.finditer(pattern):
        for number in spec.group(1, 2):
            if number == "*":
                raise TemplateLimit("a %-format may not take its width from the arguments (%*d)")
            if number is not None and (len(number) > 4 or int(number) > MAX_WIDTH):
                raise TemplateLimit(f"the width or precision {number} in a %-format is more than {MAX_WIDTH}")
        conversions += spec.group(3) not in ("", "%")
    if isinstance(arguments, Mapping):
        values: Iterable[Any] = arguments.values()
    elif isinstance(arguments, tuple):
        values = arguments
    else:
        values = (arguments,)
    largest = max((shown_size(v) for v in values), default=0)
    _text_size(len(pattern) + conversions * largest, "the formatted text")


def modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _printf_checked(left, right)
    return left % right


def concat(*parts: Any) -> str:
    """`a ~ b ~ c`, bounded: each part is sized before it is turned into text."""
    total, texts = 0, []
    for part in parts:
        if not isinstance(part, str):
            _text_size(shown_size(part), "a value joined with ~")
        text = str(part)
        total += len(text)
        _text_size(total, "the text joined with ~")
        texts.append(text)
    return "".join(texts)


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise TemplateLimit(f"range() may count at most {MAX_ITEMS} numbers, not {len(numbers)}")
    return numbers


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": add,
    "-": lambda a, b: a - b,
    "*": multiply,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": modulo,
    "**": power,
}


# --------------------------------------------------------------------------- filters

_UNKNOWN: Any = object()  # a value the checker cannot know before the message is rendered


def _argument(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _width(value: Any, what: str) -> None:
    if isinstance(value, str):
        value = len(value)
    if _is_int(value) and value > MAX_WIDTH:
        raise TemplateLimit(f"{what} {_brief(value)} is more than {MAX_WIDTH}")


def _known_text(value: Any) -> str | None:
    if value is _UNKNOWN:
        return None
    _text_size(shown_size(value), "the filtered value")
    return str(value)


def _check_center(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _width(_argument(args, kwargs, 0, "width", 80), "center()'s width")


def _check_indent(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    width = _argument(args, kwargs, 0, "width", 4)
    _width(width, "indent()'s width")
    text = _known_text(value)
    if text is not None and width is not _UNKNOWN:
        pad = len(width) if isinstance(width, str) else width if _is_int(width) else 0
        _text_size(len(text) + (text.count("\n") + 1) * max(pad, 0), "the indented text")


def _check_wordwrap(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    wrapstring = _argument(args, kwargs, 2, "wrapstring", None)
    text = _known_text(value)
    if isinstance(wrapstring, str) and text is not None:
        _text_size(len(text) * (1 + len(wrapstring)), "the wrapped text")


def _check_replace(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    old, new = _argument(args, kwargs, 0, "old", _UNKNOWN), _argument(args, kwargs, 1, "new", _UNKNOWN)
    count = _argument(args, kwargs, 2, "count", None)
    text = _known_text(value)
    if text is None or not isinstance(old, str) or new is _UNKNOWN:
        return
    new_size = shown_size(new)
    found = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        found = min(found, count)
    _text_size(len(text) + found * max(new_size - len(old), 0), "the replaced text")


def _check_join(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    separator = _argument(args, kwargs, 0, "d", "")
    if value is _UNKNOWN or separator is _UNKNOWN or isinstance(value, Undefined):
        return
    if isinstance(value, str | Mapping | list | tuple | set | frozenset | range):
        items = list(value)
        _items(len(items), "the joined list")
        size = sum(shown_size(item) for item in items) + shown_size(separator) * max(len(items) - 1, 0)
        _text_size(size, "the joined text")


def _check_format(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    if isinstance(value, str) and all(a is not _UNKNOWN for a in (*args, *kwargs.values())):
        _printf_checked(value, dict(kwargs) if kwargs else tuple(args))
    elif isinstance(value, str):
        _printf_checked(value, ())


def _check_batch(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _width(_argument(args, kwargs, 0, "linecount", 1), "batch()'s size")


def _check_slice(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _width(_argument(args, kwargs, 0, "slices", 1), "slice()'s count")


def _check_tojson(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _width(_argument(args, kwargs, 0, "indent", None), "tojson()'s indent")
    if value is not _UNKNOWN:
        _text_size(shown_size(value) * 2, "the JSON")


def _check_sized(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    _known_text(value)


def _check_sum(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    start = _argument(args, kwargs, 1, "start", 0)
    if start is not _UNKNOWN and not isinstance(start, int | float):
        raise TemplateRefused("sum() adds numbers only: its start must be a number")


def _check_truncate(value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    end = _argument(args, kwargs, 2, "end", "...")
    _known_text(value)
    if end is not _UNKNOWN:
        _text_size(shown_size(end), "truncate()'s ending")


_Check = Callable[[Any, tuple[Any, ...], Mapping[str, Any]], None]
_FILTER_CHECKS: dict[str, _Check] = {
    "center": _check_center, "indent": _check_indent, "wordwrap": _check_wordwrap, "replace": _check_replace,
    "join": _check_join, "format": _check_format, "batch": _check_batch, "slice": _check_slice,
    "tojson": _check_tojson, "string": _check_sized, "list": _check_sized, "sum": _check_sum,
    "truncate": _check_truncate,
}


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, with its arguments checked before it runs; keeps the `pass_*` marks Jinja2
    reads to know what to pass first."""
    check = _FILTER_CHECKS.get(name)
    skip = 0 if _PassArg.from_obj(function) is None else 1

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _operation()
        if check is not None and len(args) > skip:
            check(args[skip], tuple(args[skip + 1:]), kwargs)
        return function(*args, **kwargs)

    return bounded


# --------------------------------------------------------------------------- compiling


_LOOP_TURNS = "loop_turns"


def _loop_turns(iterable: nodes.Node) -> nodes.Call:
    """The iterable of a `{% for %}`, counted turn by turn against the render's budget. Jinja2
    allows no new node types: this is a call the parser can never produce (to an attribute of
    the environment), which the code generator compiles straight to the hook."""
    return nodes.Call(nodes.EnvironmentAttribute(_LOOP_TURNS), [iterable], [], None, None, lineno=iterable.lineno)


def _loop_iterable(node: nodes.Node) -> nodes.Node:
    """The iterable as written, inside the counting wrapper."""
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.EnvironmentAttribute) \
            and node.node.name == _LOOP_TURNS:
        return node.args[0]
    return node


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja2's code generator, minus compile-time evaluation: output is never folded into
    constants (folding is where `9 ** 12000000` ran), every piece of output is counted, `~`
    is bounded, loops count their turns."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> str:
        raise nodes.Impossible()

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        self.write("environment.emit(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.tilde(")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")")

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        iterable = _loop_iterable(node)
        if iterable is node:
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        self.write(f"environment.{_LOOP_TURNS}(")
        self.visit(iterable, frame)
        self.write(")")


class _NameTracker(_BoundedCodeGenerator):
    """`jinja2.meta.find_undeclared_variables`, on the bounded generator: the stock one runs
    the optimizer and folds output, which is the very evaluation the checker must not do."""

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment, "<introspection>", "<introspection>", optimized=False)
        self.undeclared: set[str] = set()

    def write(self, x: str) -> None:
        pass

    def enter_frame(self, frame: Frame) -> None:
        super().enter_frame(frame)
        for _, (action, param) in frame.symbols.loads.items():
            if action == "resolve" and param not in self.environment.globals:
                self.undeclared.add(param)


class _BoundedTemplate(jinja2.Template):
    def render(self, *args: Any, **kwargs: Any) -> str:
        """Rendered within a budget: the caller's (`render` below), or a fresh default one."""
        if _BUDGET.get() is not None:
            return super().render(*args, **kwargs)
        token = _BUDGET.set(_Budget(time.monotonic, TIME_BUDGET_SECONDS))
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


_NOT_IN_MESSAGES: tuple[tuple[type[nodes.Node], str], ...] = (
    (nodes.Extends, "{% extends %}"), (nodes.Include, "{% include %}"), (nodes.Import, "{% import %}"),
    (nodes.FromImport, "{% from ... import %}"), (nodes.ScopedEvalContextModifier, "{% autoescape %}"),
    (nodes.EvalContextModifier, "{% autoescape %}"),
)


class MessageEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox messages render in. See the module's docstring for what it bounds."""

    intercepted_binops = frozenset(_BINOPS)  # also what keeps Jinja2 from folding them at compile time
    code_generator_class = _BoundedCodeGenerator
    template_class = _BoundedTemplate

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=jinja2.ChainableUndefined, optimized=False)
        self.globals = {"range": bounded_range, "dict": dict, "cycler": Cycler, "joiner": Joiner,
                        "namespace": Namespace}
        self.filters = {name: _bounded_filter(name, function) for name, function in self.filters.items()
                        if name not in REMOVED_FILTERS}
        self._callables: tuple[object, ...] = (bounded_range, dict, Cycler, Joiner, Namespace)

    # ---------------------------------------------------------------- parsing

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateSyntaxError(f"the template is longer than {MAX_SOURCE_CHARS} characters", 1, name, filename)
        try:
            template = super()._parse(source, name, filename)
        except ValueError as error:  # a number literal past Python's 4300 digits
            raise TemplateSyntaxError(f"the template holds a number too long to read ({error})", 1, name,
                                      filename) from None
        for kind, tag in _NOT_IN_MESSAGES:
            for found in template.find_all(kind):
                raise TemplateSyntaxError(f"{tag} is not available in messages", found.lineno, name, filename)
        for loop in list(template.find_all(nodes.For)):
            if loop.recursive:
                raise TemplateSyntaxError("recursive loops are not available in messages", loop.lineno, name,
                                          filename)
            loop.iter = _loop_turns(loop.iter)
        return template

    # ---------------------------------------------------------------- the hooks compiled code calls

    def emit(self, value: Any) -> str:
        _operation()
        if not isinstance(value, str):
            _text_size(shown_size(value), "a value written into the message")
        text = str(value)
        budget = _BUDGET.get()
        if budget is not None:
            budget.wrote(len(text))
        return text

    def tilde(self, *parts: Any) -> str:
        _operation()
        return concat(*parts)

    def loop_turns(self, iterable: Any) -> Iterator[Any]:
        budget = _BUDGET.get()
        for item in iterable:
            if budget is not None:
                budget.turn()
            yield item

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _operation()
        return _BINOPS[operator](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _operation()
        return super().call(context, obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """A field of a profile, event or result wins over a method of the same name: a trait
        called `items` or `copy` is data, not `dict.items`."""
        _operation()
        if isinstance(obj, Mapping) and not attribute.startswith("_"):
            try:
                return obj[attribute]
            except (LookupError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _operation()
        return super().getitem(obj, argument)

    # ---------------------------------------------------------------- what is allowed

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_") or attr in DANGEROUS_ATTRIBUTES:
            return False
        if isinstance(obj, Undefined | LoopContext | Namespace):
            return True
        if isinstance(obj, Cycler):
            return attr in CYCLER_ATTRIBUTES
        if isinstance(obj, str):
            return attr in STR_METHODS
        if isinstance(obj, Mapping):
            return attr in MAPPING_METHODS
        if isinstance(obj, list | tuple):
            return attr in SEQUENCE_METHODS
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        if any(obj is known for known in self._callables) or isinstance(obj, Macro | Joiner | Undefined):
            return True
        owner = getattr(obj, "__self__", None)
        if isinstance(obj, types.MethodType | types.BuiltinMethodType) and owner is not None \
                and not isinstance(owner, types.ModuleType):
            return self.is_safe_attribute(owner, obj.__name__, obj)
        return False

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise TemplateRefused(f"{type(obj).__name__}.{attribute} is not available in messages")

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format is refused by the allow-list; the `format` filter is bounded


@cache
def environment() -> MessageEnvironment:
    return MessageEnvironment()


# --------------------------------------------------------------------------- checking


class Problem(NamedTuple):
    line: int  # in the template, from 1
    message: str
    hint: str | None = None
    refused: bool = True  # False: the template does not read (a syntax error)


@dataclass(frozen=True)
class Checked:
    problems: tuple[Problem, ...]
    names: frozenset[str]  # the names the template reads from its scope


_BOUND_HINT = "messages compute small values only; see the limits in docs/dsl.md (Message text)"
_ACCESS_HINT = "a message reads the fields of user, event and named results, not Python internals"


def check(text: str) -> Checked:
    """Read the template without running it: its problems, and the names it reads. Raises
    RecursionError for a template nested too deeply to read."""
    env = environment()
    try:
        ast = env.parse(text)
        tracker = _NameTracker(env)
        tracker.visit(ast)
    except TemplateSyntaxError as error:
        return Checked((Problem(error.lineno or 1, error.message or str(error), refused=False),), frozenset())
    static = _Static(env)
    static.block(ast.body, {}, 1)
    return Checked(tuple(dict.fromkeys(static.problems)), frozenset(tracker.undeclared))


def problems(text: str) -> list[Problem]:
    return list(check(text).problems)


def compile_template(text: str) -> jinja2.Template:
    """The template, compiled for `render`: refused (TemplateRefused) for what `check` refuses,
    a TemplateSyntaxError when it does not read."""
    refused = [problem.message for problem in problems(text) if problem.refused]
    if refused:
        raise TemplateRefused("; ".join(refused))
    return environment().from_string(text)


def render(template: jinja2.Template, variables: Mapping[str, Any], clock: Callable[[], float] = time.monotonic,
           seconds: float = TIME_BUDGET_SECONDS) -> str:
    """Render within a fresh budget measured with `clock`."""
    token = _BUDGET.set(_Budget(clock, seconds))
    try:
        return template.render(variables)
    finally:
        _BUDGET.reset(token)


class _Static:
    """The checker's reading of a template: follows constants (literals, and what top-level
    `{% set %}` gives them) through the same bounded operators the renderer uses, which refuse
    before computing, so nothing big is ever built; anything else is unknown and left to the
    render's budget."""

    def __init__(self, env: MessageEnvironment) -> None:
        self.env = env
        self.problems: list[Problem] = []
        self.turns = 0

    def refuse(self, node: nodes.Node, message: str, hint: str | None = _BOUND_HINT) -> None:
        self.problems.append(Problem(node.lineno or 1, message, hint))

    # ---------------------------------------------------------------- statements

    def block(self, body: Iterable[nodes.Node], known: dict[str, Any], turns: int) -> None:
        for node in body:
            self.statement(node, known, turns)

    def statement(self, node: nodes.Node, known: dict[str, Any], turns: int) -> None:
        if isinstance(node, nodes.Assign):
            value = self.value(node.node, known)
            if isinstance(node.target, nodes.Name):
                known[node.target.name] = value
            else:
                self.forget(node.target, known)
            return
        if isinstance(node, nodes.For):
            self.loop(node, known, turns)
        elif isinstance(node, nodes.Macro | nodes.CallBlock):
            if isinstance(node, nodes.CallBlock):
                self.value(node.call, known)
            self.block(node.body, {}, turns)
        else:
            inner = dict(known)
            for child in node.iter_child_nodes():
                if isinstance(child, nodes.Expr):
                    self.value(child, inner)
                else:
                    self.statement(child, inner, turns)
        self.forget(node, known)  # what a compound statement sets is not known after it

    def loop(self, node: nodes.For, known: dict[str, Any], turns: int) -> None:
        iterable = self.value(_loop_iterable(node.iter), known)
        count = len(iterable) if isinstance(iterable, str | list | tuple | dict | range) else None
        inner = dict(known)
        self.forget(node.target, inner)
        if node.test is not None:
            self.value(node.test, inner)
        if count is not None:
            self.turns += turns * count
            if self.turns > MAX_ITERATIONS:
                self.refuse(node, f"the template's loops would turn {self.turns} times; a message may turn them "
                                  f"at most {MAX_ITERATIONS} times in all")
                return
            turns *= max(count, 1)
        self.block(node.body, inner, turns)
        self.block(node.else_, dict(known), turns)

    @staticmethod
    def forget(node: nodes.Node, known: dict[str, Any]) -> None:
        for name in node.find_all(nodes.Name):
            if name.ctx == "store":
                known.pop(name.name, None)
        if isinstance(node, nodes.Name) and node.ctx == "store":
            known.pop(node.name, None)

    # ---------------------------------------------------------------- expressions

    def value(self, node: nodes.Node, known: dict[str, Any]) -> Any:
        """The value of a constant expression, or _UNKNOWN; refuses what is bound to fail."""
        try:
            return self._value(node, known)
        except TemplateLimit as error:
            self.refuse(node, str(error))
        except TemplateRefused as error:
            self.refuse(node, str(error), _ACCESS_HINT)
        except Exception:  # anything else fails at render time, with its own reason
            pass
        return _UNKNOWN

    def _value(self, node: nodes.Node, known: dict[str, Any]) -> Any:
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.TemplateData):
            return node.data
        if isinstance(node, nodes.Name):
            return known.get(node.name, _UNKNOWN) if node.ctx == "load" else _UNKNOWN
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.value(item, known) for item in node.items]
            if any(item is _UNKNOWN for item in items) or (isinstance(node, nodes.Tuple) and node.ctx != "load"):
                return _UNKNOWN
            return items if isinstance(node, nodes.List) else tuple(items)
        if isinstance(node, nodes.Getattr):
            return self.attribute(node, self.value(node.node, known), node.attr)
        if isinstance(node, nodes.Getitem):
            obj, key = self.value(node.node, known), self.value(node.arg, known)
            if isinstance(key, str):
                return self.attribute(node, obj, key, item=True)
            if obj is _UNKNOWN or key is _UNKNOWN:
                return _UNKNOWN
            return obj[key]
        if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
            left, right = self.value(node.left, known), self.value(node.right, known)
            if left is _UNKNOWN or right is _UNKNOWN:
                return _UNKNOWN
            return _BINOPS[node.operator](left, right)
        if isinstance(node, nodes.Concat):
            parts = [self.value(part, known) for part in node.nodes]
            return _UNKNOWN if any(part is _UNKNOWN for part in parts) else concat(*parts)
        if isinstance(node, nodes.Filter):
            return self.filter(node, known)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name) and node.node.name == "range" \
                and "range" not in known:
            args = [self.value(arg, known) for arg in node.args]
            self.children(node, known, skip=node.args)
            if node.kwargs or node.dyn_args or node.dyn_kwargs or any(a is _UNKNOWN for a in args):
                return _UNKNOWN
            return bounded_range(*args)
        self.children(node, known)
        return _UNKNOWN

    def children(self, node: nodes.Node, known: dict[str, Any], skip: Iterable[nodes.Node] = ()) -> None:
        skipped = [id(s) for s in skip]
        for child in node.iter_child_nodes():
            if id(child) not in skipped:
                self.value(child, known)

    def attribute(self, node: nodes.Node, obj: Any, name: str, item: bool = False) -> Any:
        if name.startswith("_") or name in DANGEROUS_ATTRIBUTES:
            raise TemplateRefused(f"it reads {name!r}, which is not available in messages")
        if obj is _UNKNOWN:
            return _UNKNOWN
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if not item and hasattr(obj, name) and not self.env.is_safe_attribute(obj, name, None):
            raise TemplateRefused(f"{type(obj).__name__}.{name} is not available in messages")
        return _UNKNOWN

    def filter(self, node: nodes.Filter, known: dict[str, Any]) -> Any:
        value = _UNKNOWN if node.node is None else self.value(node.node, known)
        args = tuple(self.value(arg, known) for arg in node.args)
        kwargs = {str(keyword.key): self.value(keyword.value, known) for keyword in node.kwargs}
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.children(node, known, skip=[n for n in (node.node, *node.args) if n is not None])
            return _UNKNOWN
        if node.name == "attr" and args and isinstance(args[0], str):
            self.attribute(node, _UNKNOWN, args[0])
        if isinstance(kwargs.get("attribute"), str):
            for part in str(kwargs["attribute"]).split("."):
                self.attribute(node, _UNKNOWN, part)
        check = _FILTER_CHECKS.get(node.name)
        if check is not None:
            check(value, args, kwargs)
        function = self.env.filters.get(node.name)
        if function is None or any(v is _UNKNOWN for v in (value, *args, *kwargs.values())) \
                or _PassArg.from_obj(function) is _PassArg.context:
            return _UNKNOWN
        return self.env.call_filter(node.name, value, list(args), kwargs)
