"""The message-template language (dsl/templates.py): hostile templates refused by reading them,
never by running them; what only data can make too big refused while rendering, within a budget;
ordinary messages read and rendered exactly as stock Jinja2 renders them."""

from __future__ import annotations

import itertools
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from actions.templates import MAX_OUTPUT_CHARS, TemplateFailed
from actions.templates import render as send_render
from dsl import JourneyInvalid, parse, validate
from dsl import templates as t

NESTED_LOOPS = ("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
                "{% endfor %}{% endfor %}{% endfor %}")
DOUBLING = "{% set s = 'xxxxxxxxxx' %}" + "{% set s = s ~ s %}" * 40 + "{{ s }}"


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("{{ 9 ** 12000000 }}", "more than 4096 bits"),
        ("{{ (9 ** 99999) > 0 }}", "more than 4096 bits"),
        ("{{ 'a' * 10**9 }}", "longer than 10000 characters"),
        ("{{ [1, 2] * 10**6 }}", "more than 1000 items"),
        ("{{ 'x'|center(999999999) }}", "width 999999999 is more than 200"),
        ("{{ 'x'|indent(999999999) }}", "width 999999999 is more than 200"),
        ("{{ '%999999999d' % 1 }}", "width or precision 999999999 in a %-format is more than 200"),
        ("{{ '%.999999999f' | format(1) }}", "width or precision 999999999 in a %-format is more than 200"),
        ("{{ '%*d' % (5, 1) }}", "may not take its width from the arguments"),
        ("{{ range(10**9) | join }}", "range() may count at most 1000 numbers"),
        (NESTED_LOOPS, "a message may turn them at most 10000 times in all"),
        (DOUBLING, "the text joined with ~ would be longer than 10000 characters"),
        ("{{ 'ab'|replace('', 'x' * 9000) }}", "the replaced text would be longer than 10000 characters"),
        ("{{ x|batch(10**8) }}", "batch()'s size 100000000 is more than 200"),
        ("{{ cycler.__init__.__globals__ }}", "it reads '__init__', which is not available in messages"),
        ("{{ ''.__class__ }}", "it reads '__class__', which is not available in messages"),
        ("{{ user|attr('__class__') }}", "it reads '__class__', which is not available in messages"),
        ("{{ user['__class__'] }}", "it reads '__class__', which is not available in messages"),
        ("{{ user.tags|map(attribute='__class__')|list }}", "it reads '__class__'"),
        ("{{ ''.format }}", "it reads 'format', which is not available in messages"),
        ("{{ 'x'.zfill(10**9) }}", "str.zfill is not available in messages"),
        ("{{ x }}" * 2000, "longer than 10000 characters"),
    ],
)
def test_hostile_templates_are_refused_by_reading_them(text: str, bound: str) -> None:
    """The check names the bound a constant breaks: it found it without computing the value
    (nine to the twelve millionth is never built: the bounded operators refuse first)."""
    found = t.problems(text)
    assert found, text
    assert bound in " ".join(problem.message for problem in found)
    with pytest.raises(t.TemplateRefused if found[0].refused else jinja2.TemplateSyntaxError):
        t.compile_template(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{% include 'other' %}", "{% include %} is not available in messages"),
        ("{% extends 'base' %}", "{% extends %} is not available in messages"),
        ("{% import 'm' as m %}", "{% import %} is not available in messages"),
        ("{% for x in user.tags recursive %}{{ loop(x) }}{% endfor %}", "recursive loops are not available"),
        ("{{ x|pprint }}", "No filter named 'pprint'"),
        ("{{ 1" + "0" * 5000 + " }}", "a number too long to read"),
        ("{{ unclosed", "unexpected end of template"),
    ],
)
def test_what_messages_cannot_use_does_not_read(text: str, message: str) -> None:
    [problem] = t.problems(text)
    assert not problem.refused
    assert message in problem.message


def test_problems_say_on_which_line_of_the_template() -> None:
    assert [(p.line, p.refused) for p in t.problems("hello\n{{ user.a }}\n{{ 2 ** 5000 }}")] == [(3, True)]


ORDINARY = [
    '{{ user.first_name | default("there") }}',
    "Hi {{ user.first_name | default('there') }}, your code is {{ coupon.code }}",
    '{{ "%.2f" | format(event.amount) }} yuan',
    "{% for p in user.purchases %}{{ loop.index }}. {{ p.sku | upper }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{{ user.tags | join(', ') }} ({{ user.tags | length }})",
    "{{ user.first_name ~ ' ' ~ user.last_name }}{{ user.nothing.deeper }}",
    "{% set total = event.amount * 2 + 1 %}{{ total }} {{ 2 ** 10 }} {{ '%05.1f' % event.amount }}",
    "{{ user.get('first_name') }} {{ user.first_name.upper() }} {{ user.tags[0] }} {{ user.tags[-1:] }}",
    "{% if user.stage == 'vip' %}VIP{% elif user.stage %}{{ user.stage | title }}{% else %}-{% endif %}",
    "{{ user.first_name | center(9) }}|{{ 'ab' * 3 }}|{{ event.amount | round(1) }}|{{ user.bio | truncate(12) }}",
    "{% for k, v in coupon | dictsort %}{{ k }}={{ v }};{% endfor %}",
]
USER = {"first_name": "Lin", "last_name": "Wu", "stage": "vip", "tags": ["member", "lens"],
        "purchases": [{"sku": "l-1"}, {"sku": "c-2"}], "bio": "Likes lenses and long walks"}
VARIABLES = {"user": USER, "event": {"amount": 129.456}, "coupon": {"code": "LENS-42", "pool": "LENS"}}


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_templates_are_accepted_and_render_as_stock_jinja2_does(text: str) -> None:
    stock = ImmutableSandboxedEnvironment(autoescape=False, undefined=jinja2.ChainableUndefined)
    assert t.problems(text) == []
    assert t.render(t.compile_template(text), VARIABLES) == stock.from_string(text).render(VARIABLES)


def test_the_check_reports_the_names_a_template_reads() -> None:
    checked = t.check("{% set x = 1 %}{% for p in user.list %}{{ p }}{{ x }}{{ coupon.code }}{% endfor %}"
                      "{{ range(2) }}")
    assert (checked.problems, checked.names) == ((), frozenset({"user", "coupon"}))


def test_a_trait_named_like_a_method_is_the_trait() -> None:
    text = "{{ user.items }}|{{ user.copy }}|{{ user.keys() | list }}"
    assert t.render(t.compile_template(text), {"user": {"items": 3, "copy": "c"}}) == "3|c|['items', 'copy']"


# --------------------------------------------------------------------------- bounds only data breaks

BIG: dict[str, Any] = {"n": 9, "big": 12_000_000, "long": "x" * 6000, "key": "__class__", "tags": ["a"] * 900}


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("{{ user.n ** user.big }}", "9 ** 12000000 would be a number of more than 4096 bits"),
        ("{{ (user.n ** user.big) > 0 }}", "more than 4096 bits"),
        ("{{ user.long * 2 }}", "repeating a text 2 times would be longer than 10000 characters"),
        ("{{ user.long ~ user.long }}", "longer than 10000 characters"),
        ("{{ user.long + user.long }}", "longer than 10000 characters"),
        ("{{ user.tags + user.tags }}", "more than 1000 items"),
        ("{{ 'x'|center(user.big) }}", "width 12000000 is more than 200"),
        ("{{ '%*d' % (user.big, 1) }}", "may not take its width from the arguments"),
        ("{{ user.long|replace('', user.long) }}", "the replaced text would be longer than 10000 characters"),
        ("{{ range(user.big)|list }}", "range() may count at most 1000 numbers"),
        ("{% for a in user.tags %}{% for b in user.tags %}{% endfor %}{% endfor %}", "more than 10000 times"),
        ("{% set s = user.long %}{% set s = s ~ s %}{% set s = s ~ s %}{{ s }}", "longer than 10000 characters"),
        ("{% macro d(x) %}{{ x }}{{ x }}{% endmacro %}{{ d(d(d(d(d(d(d(d(d(d(user.long)))))))))) }}",
         "writes more than 100000 characters"),
        ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
         "more than 50000 operations"),
    ],
)
def test_what_only_data_makes_too_big_is_refused_while_rendering(text: str, bound: str) -> None:
    template = t.compile_template(text)  # nothing constant to refuse: the check passes it
    with pytest.raises(t.TemplateLimit) as refused:
        t.render(template, {"user": BIG}, clock=lambda: 0.0)  # time stands still: the other bounds decide
    assert bound in str(refused.value)


@pytest.mark.parametrize("text", ["{{ user[user.key] }}", "{{ user|attr(user.key) }}",
                                  "{{ cycler|attr('_' ~ user.key[1:]) }}", "{{ user.long.zfill(3) }}"])
def test_unsafe_access_only_data_reveals_raises_instead_of_rendering_blank(text: str) -> None:
    template = t.compile_template(text)
    with pytest.raises(t.TemplateRefused, match="is not available in messages"):
        t.render(template, {"user": BIG})


def test_the_time_budget_is_measured_on_the_clock_given() -> None:
    ticks = itertools.count(0.0, 0.01)  # each look at the clock is 10 ms later
    template = t.compile_template("{% for i in range(100) %}{{ i }}{% endfor %}")
    with pytest.raises(t.TemplateLimit, match=r"took longer than 0\.5 s"):
        t.render(template, {}, clock=lambda: next(ticks))
    assert t.render(template, {}, clock=lambda: 0.0) == "".join(map(str, range(100)))


def test_a_render_outside_render_still_has_a_budget() -> None:
    template = t.compile_template("{% for a in user.tags %}{% for b in user.tags %}{% endfor %}{% endfor %}")
    with pytest.raises(t.TemplateLimit, match="more than 10000 times"):
        template.render(user=BIG)


# --------------------------------------------------------------------------- in a journey


def test_the_journey_check_reports_refusals_at_the_step() -> None:
    text = ('journey "t"\n  trigger event "purchase"\n\n'
            '  send sms "hi {{ 9 ** 12000000 }}"\n  send sms "{{ cycler.__init__.__globals__ }}"\n')
    with pytest.raises(JourneyInvalid) as caught:
        validate(parse(text), text)
    found = [(d.line, d.column, d.message) for d in caught.value.diagnostics]
    assert found == [
        (4, 3, "message: the template is refused: 9 ** 12000000 would be a number of more than 4096 bits"),
        (5, 3, "message: the template is refused: it reads '__init__', which is not available in messages"),
        (5, 3, "message: the template is refused: it reads '__globals__', which is not available in messages"),
    ]


# --------------------------------------------------------------------------- the property

_SAFE = ["{{ user.first_name | default('there') }}", "{{ coupon.code }}", "{{ user.n * 3 }}", "plain text ",
         "{{ user.tags | join(',') }}", "{{ '%.2f' | format(user.n) }}", "{{ user.long | length }}"]
_HOSTILE = ["{{ 9 ** 99999 }}", "{{ user.n ** user.big }}", "{{ 'ab' * 6000 }}", "{{ user.long * user.big }}",
            "{{ user.long ~ user.long }}", "{{ 'x' | center(user.big) }}", "{{ '%*d' % (user.big, 1) }}",
            "{{ user.long | replace('', user.long) }}", "{{ range(user.big) | list }}", "{{ user.long }}",
            "{{ user.tags + user.tags }}", "{{ 1 / 0 }}", "{{ user.nothing() }}", "{{ user.n | int(base=1) }}",
            "{% set s = user.long %}{% set s = s ~ s %}{{ s }}", "{{ user.tags | batch(user.big) | list }}"]
_UNSAFE = ["{{ cycler.__init__.__globals__ }}", "{{ ''.__class__ }}", "{{ user | attr('__class__') }}",
           "{{ user[user.key] }}", "{{ user | attr(user.key) }}", "{{ user.long.zfill(3) }}"]


def _pieces(unsafe: bool) -> st.SearchStrategy[tuple[str, bool]]:
    return st.sampled_from(_UNSAFE if unsafe else _SAFE + _HOSTILE).map(lambda text: (text, unsafe))


def _wrap(children: st.SearchStrategy[tuple[str, bool]]) -> st.SearchStrategy[tuple[str, bool]]:
    def loop(inner: tuple[str, bool], over: str) -> tuple[str, bool]:
        return f"{{% for i in {over} %}}{inner[0]}{{% endfor %}}", inner[1]

    def macro(inner: tuple[str, bool]) -> tuple[str, bool]:
        return f"{{% macro m() %}}{inner[0]}{inner[0]}{{% endmacro %}}{{{{ m() }}}}{{{{ m() }}}}", inner[1]

    return st.one_of(
        st.builds(loop, children, st.sampled_from(["user.tags", "range(50)", "range(user.n)", "user.long"])),
        children.map(macro),
        children.map(lambda inner: (f"{{% if user.n %}}{inner[0]}{{% endif %}}", inner[1])),
        st.lists(children, min_size=2, max_size=4).map(lambda kids: ("".join(k[0] for k in kids),
                                                                      any(k[1] for k in kids))),
    )


_templates = st.recursive(_pieces(False) | _pieces(True), _wrap, max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(_templates)
def test_any_template_renders_within_the_cap_or_fails_with_a_reason(template: tuple[str, bool]) -> None:
    text, unsafe = template
    user = {**BIG, "first_name": "Lin"}
    try:
        output = send_render(text, user, None, {"coupon": {"code": "C-1"}})
    except TemplateFailed as failed:
        assert str(failed).strip()
        return
    assert not unsafe, f"unsafe access rendered as {output!r}"
    assert len(output) <= MAX_OUTPUT_CHARS
