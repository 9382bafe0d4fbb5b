"""What the canvas shows in words: cards, the Start card's settings, branch titles, problems
without line numbers; built from real journeys, and rendered by the real server."""

from __future__ import annotations

import re
from pathlib import Path

from builder_ui import canvas
from builder_ui.sentences import plain

from .conftest import Builder
from .test_routes import create

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.journey").read_text(encoding="utf-8")


def nodes(block: canvas.Block | None) -> dict[str, canvas.Node]:
    out: dict[str, canvas.Node] = {}
    for node in block.nodes if block is not None else []:
        out[node.step_id] = node
        for branch in node.branches:
            out.update(nodes(branch.block))
    return out


def test_cards_say_their_step_in_words_and_keep_the_dsl() -> None:
    cv = canvas.build(example("ab_message_test"))
    drawn = nodes(cv.main)
    assert plain(drawn["three_days"].sentence) == "Wait 3 days"
    assert drawn["three_days"].summary == "wait 3d"  # the DSL, for the tooltip and the small line
    sms = plain(drawn["coupon_sms"].sentence)
    assert sms.startswith("Send SMS: 【清瞳】[first name]，首单立减 20 元：下单时输入 [first order code]")
    assert plain(drawn["coupon"].sentence) == "Give a coupon from FIRST_ORDER_20 (as first_order)"


def test_split_arms_are_named_by_letter_and_share_with_their_label_aside() -> None:
    split = nodes(canvas.build(example("ab_message_test")).main)["offer_test"]
    assert [b.title for b in split.branches] == ["A · 45%", "B · 45%", "Control · 10%"]
    assert [b.label for b in split.branches] == ["arm_coupon", "arm_free_shipping", "arm_control"]
    assert [b.dsl for b in split.branches] == ["45%", "45%", "10% control"]
    assert [b.control for b in split.branches] == [False, False, True]


def test_if_and_wait_for_event_branches_are_named_in_words() -> None:
    offer = nodes(canvas.build(example("win_back")).main)["offer"]
    assert plain(offer.sentence) == "If total spend is at least 1000"
    assert [b.title for b in offer.branches] == ["Total spend is at least 1000", "Otherwise"]
    assert [b.dsl for b in offer.branches] == ["if user.total_spend >= 1000", "else"]
    waiting = [n for n in nodes(canvas.build(example("lens_never_bought_trial")).main).values()
               if n.kind.key == "wait_for_event"]
    assert [b.title for b in waiting[0].branches] == ["Received", "Timed out"]


def test_the_start_card_has_every_setting_in_words() -> None:
    start = canvas.build(example("win_back")).start
    assert [(line.kind, line.words) for line in start] == [
        ("trigger", "When this becomes true: days since last purchase is at least 60"),
        ("audience", "Who: has bought something at least once and does not have tag unsubscribed"),
        ("entry", "Can enter again after 90 days"),
        ("exit", "Leaves when they buy something"),
        ("exit", "Leaves when this becomes true: has tag unsubscribed"),
        ("goal", "Goal: came back within 30 days"),
        ("quiet", "No messages 21:00–09:00"),
        ("zone", "Time zone: Asia/Shanghai"),
        ("cap", "At most 1 SMS per 7 days"),
    ]
    assert start[0].dsl == "trigger when days_since(user.last_purchase_at) >= 60"


def test_problems_on_cards_are_words_without_line_numbers() -> None:
    text = 'journey "t"\n  trigger api\n\n  @a wait 1d\n  @a send sms "Hi {{ nobody.name }}"\n'
    cv = canvas.build(text)
    words = [p.words for n in nodes(cv.main).values() for p in n.problems]
    assert "the label @a is used twice" in words
    assert any("unknown name 'nobody'" in w for w in words)
    assert not any(re.search(r"\bline\b", w) for w in words)
    broken = canvas.build('journey "t"\n  trigger api\n\n  @w wait 2 dayz\n  @t add tag "x"\n')
    (problem,) = broken.problems
    assert problem.step_id == "w" and problem.line == 4  # the DSL panel still knows the line
    assert problem.words.startswith("This step's text does not read: a duration needs a unit")
    missing = canvas.build('journey "t"\n  audience user.points > 1\n\n  @t add tag "x"\n')
    assert [p.words for p in missing.settings_problems] == ["the journey has no trigger"]


def test_the_editor_draws_the_words_chips_and_dsl_tooltips(signed_in: Builder) -> None:
    slug = create(signed_in, "First-order offer")
    response = signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": example("ab_message_test")},
                              signed_in.csrf())
    assert response.status_code == 200
    html = response.text
    for title in ("A · 45%", "B · 45%", "Control · 10%"):
        assert f'<span class="arm-title">{title}</span>' in html
    assert '<code class="arm-label">@arm_coupon</code>' in html
    assert '<span class="chip">first name</span>' in html
    assert '<span class="sentence">Wait 3 days</span>' in html
    assert 'title="wait 3d"' in html
    assert "Who: has push token and does not have tag unsubscribed" in html
    assert "Goal: first purchase within 14 days" in html
    broken = signed_in.htmx(f"/builder/journeys/{slug}/text",
                            {"source": example("ab_message_test").replace("wait 3d", "wait 3 dayz")},
                            signed_in.csrf())
    problem_texts = re.findall(r'<span class="problem-text">([^<]*)</span>', broken.text)
    assert problem_texts and not any("line" in p for p in problem_texts)
