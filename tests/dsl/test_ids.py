from __future__ import annotations

import pytest

from dsl import model as m
from dsl import parse
from dsl.ids import assign_ids, derived_base, slug, walk_steps


@pytest.mark.parametrize(
    ("step_text", "expected"),
    [
        ("wait 36h", "wait_1d12h"),
        ("wait 2 days", "wait_2_days"),  # not `wait_2d`: that is the exact 48 hours
        ("wait 1 day", "wait_1_day"),
        ("wait 2 weeks", "wait_14_days"),
        ("wait until friday 18:30", "wait_until_friday_1830"),
        ('send push template "Lens Intro!"', "send_push_lens_intro"),
        ('send sms "你好 {{ user.name }}, welcome back to the store"', "send_sms_user_name_welcome_back"),
        ('issue coupon "BDAY-2026"', "coupon_bday_2026"),
        ('call webhook "https://crm.example.com/v1/points?x=1"', "webhook_crm_example_com_v1_points"),
        ("update user.stage = 1", "update_stage"),
        ('remove tag "Lapsing"', "remove_tag_lapsing"),
        ("exit", "exit"),
    ],
)
def test_derived_base(step_text: str, expected: str) -> None:
    journey = parse(f'journey "j"\n  trigger api\n  {step_text}\n')
    assert derived_base(journey.steps[0]) == expected


def test_repeats_are_numbered_in_document_order_and_labels_win() -> None:
    journey = parse('journey "j"\n  trigger api\n  wait 1d\n  @wait_1d_2 send sms "x"\n  wait 1d\n  wait 1d\n')
    ids = assign_ids(journey)
    assert [ids[id(s)] for s in walk_steps(journey.steps)] == ["wait_1d", "wait_1d_2", "wait_1d_3", "wait_1d_4"]


def test_slug_cuts_at_words_and_is_never_empty() -> None:
    assert slug("Spring sale: 20% off everything in store today") == "spring_sale_20_off_everything_in"
    assert slug("a" * 100) == "a" * 32
    assert slug("欢迎回来") == slug("欢迎回来") != slug("生日快乐")
    assert slug("欢迎回来").startswith("h") and len(slug("欢迎回来")) == 7


def test_walk_steps_visits_nested_blocks_in_order() -> None:
    journey = parse('journey "j"\n  trigger api\n  if user.a:\n    @a pass\n  elif user.b:\n    @b pass\n'
                    '  else:\n    @c pass\n  @d pass\n')
    assert [s.label for s in walk_steps(journey.steps) if isinstance(s, m.Pass)] == ["a", "b", "c", "d"]


def test_a_calendar_wait_and_an_exact_one_get_different_ids() -> None:
    journey = parse('journey "j"\n  trigger api\n  wait 2d\n  wait 2 days\n  wait 2d\n')
    ids = assign_ids(journey)
    assert [ids[id(s)] for s in walk_steps(journey.steps)] == ["wait_2d", "wait_2_days", "wait_2d_2"]
