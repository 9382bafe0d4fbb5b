"""The step panel's message preview reads a template as the check does (dsl/templates.py) before
rendering it: a hostile template gets the check's refusal, never a stall, and unsafe access
shows as refused, not as blank text."""

from __future__ import annotations

import pytest

from builder_ui import panels


def preview(text: str) -> dict[str, object]:
    return panels.preview({"kind": "sms", "content": "text", "text": text})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{{ 9 ** 12000000 }}", "the template is refused: 9 ** 12000000 would be a number of more than 4096 bits"),
        ("{{ cycler.__init__.__globals__ }}", "the template is refused: it reads '__init__'"),
        ("{{ unclosed", "template error: unexpected end of template"),
    ],
)
def test_a_template_the_check_refuses_is_not_rendered_in_the_preview(text: str, error: str) -> None:
    shown = preview(text)
    assert str(shown["error"]).startswith(error) and "text" not in shown


def test_unsafe_access_only_the_sample_reveals_is_refused_in_the_preview() -> None:
    shown = panels.preview({"kind": "sms", "content": "text", "text": "Hi {{ user[user.key] }}",
                            "sample_user": '{"key": "__class__"}'})
    assert shown["error"] == "template error: dict.__class__ is not available in messages" and "text" not in shown


def test_an_ordinary_message_is_previewed_with_the_sample() -> None:
    assert preview("Hi {{ user.first_name | default('there') }}")["text"] == "Hi Lin"
