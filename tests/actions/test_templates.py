from __future__ import annotations

import pytest

from actions.templates import TemplateFailed, render


def test_renders_user_event_and_results() -> None:
    text = "Hi {{ user.first_name | default('there') }}, {{ event.sku }}: {{ trial.code }}"
    assert render(text, {"first_name": "Li"}, {"sku": "L1"}, {"trial": {"code": "C-1"}}) == "Hi Li, L1: C-1"
    assert render(text, {}, None, {"trial": None}).startswith("Hi there, : ")


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__subclasses__() }}",
        "{% for i in range(10**9) %}x{% endfor %}",
        "{% for i in range(900) %}{% for j in range(900) %}xx{% endfor %}{% endfor %}",
        "{{ user.update({'a': 1}) }}",
        "{{ 1 / 0 }}",
        "{{ unclosed",
    ],
)
def test_unsafe_or_broken_templates_fail_with_a_reason(text: str) -> None:
    with pytest.raises(TemplateFailed, match=r"template error|longer than"):
        render(text, {"a": 0}, None, {})


def test_python_internals_are_invisible() -> None:
    assert render("[{{ user.__class__.__mro__ }}][{{ user.__init__ }}]", {"a": 0}, None, {}) == "[][]"
