from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import Engine, select

from actions.dispatcher import Dispatcher
from actions.templates import TemplateFailed, render
from engine.clock import VirtualClock
from storage.tables import outbox
from tests.actions.conftest import NOW, Rows, Served, settings, sms, twilio_settings


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
        "{% for i in user.list %}{% for j in user.list %}xx{% endfor %}{% endfor %}",
        "{{ user.update({'a': 1}) }}",
        "{{ 1 / 0 }}",
        "{{ unclosed",
        "{{ 9 ** 12000000 }}",
        "{{ user.a ** 12000000 }}",
        "{{ 'x' | center(999999999) }}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% for i in range(1000) %}{{ '%0200d' % i }}{% endfor %}",
    ],
)
def test_unsafe_or_broken_templates_fail_with_a_reason(text: str) -> None:
    with pytest.raises(TemplateFailed, match=r"template error|longer than"):
        render(text, {"a": 9, "list": list(range(900))}, None, {})


@pytest.mark.parametrize("text", ["[{{ user.__class__.__mro__ }}][{{ user.__init__ }}]",
                                  "{{ cycler.__init__.__globals__ }}", "{{ user[user.key] }}",
                                  "{{ user | attr(user.key) }}"])
def test_python_internals_fail_the_message_instead_of_rendering_blank(text: str) -> None:
    with pytest.raises(TemplateFailed, match="not available in messages"):
        render(text, {"a": 0, "key": "__class__"}, None, {})


def test_a_refused_template_fails_its_delivery_with_the_reason(db: Engine, rows: Rows, twilio: Served) -> None:
    """Through the real dispatcher: an unsafe message is a failed delivery that says why, never
    a blank SMS; a message past a bound likewise; the rest of the batch goes out."""
    written = rows.add("sms", sms("Hi {{ cycler.__init__.__globals__ }}"))
    from_data = rows.add("sms", sms("Hi {{ user[user.key] }}"), {"phone": "+8613800000002", "key": "__class__"})
    huge = rows.add("sms", sms("{{ user.n ** user.big }}"), {"phone": "+8613800000003", "n": 9, "big": 12000000})
    fine = rows.add("sms", sms("Hi {{ user.first_name }}"), {"phone": "+8613800000004", "first_name": "Li"})

    async def go() -> None:
        async with Dispatcher(db, settings(sms=twilio_settings(twilio.url)), VirtualClock(NOW),
                              rng=random.Random(4)) as dispatcher:
            report = await dispatcher.dispatch_once()
            assert report.statuses == {"failed": 3, "sent": 1}

    asyncio.run(go())

    with db.connect() as conn:
        found = {r.id: (r.status, r.last_error) for r in conn.execute(select(outbox))}
    assert found[written] == ("failed", "message: template error: it reads '__init__', which is not available "
                                        "in messages; it reads '__globals__', which is not available in messages")
    assert found[from_data] == ("failed", "message: template error: dict.__class__ is not available in messages")
    assert found[huge] == ("failed", "message: template error: 9 ** 12000000 would be a number of more than "
                                     "4096 bits")
    assert found[fine][0] == "sent"
    assert [r["Body"] for r in twilio.remote.received] == ["Hi Li"]
