"""Semantic validation: each rule, located at the right line and column, all reported together."""

from __future__ import annotations

import pytest

from dsl import Catalog, JourneyInvalid, parse, validate
from dsl import model as m


def journey(body: str, settings: str = '  trigger event "purchase"\n') -> str:
    return f'journey "t"\n{settings}\n{body}'


def problems(text: str, catalog: Catalog | None = None) -> list[tuple[int, int, str]]:
    with pytest.raises(JourneyInvalid) as caught:
        validate(parse(text), text, catalog)
    return [(d.line, d.column, d.message) for d in caught.value.diagnostics]


def only_problem(text: str, catalog: Catalog | None = None) -> tuple[int, int, str]:
    found = problems(text, catalog)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (journey("  pass\n", settings=""), 1, 1, "no trigger"),
        (journey("  pass\n", '  trigger schedule "0 25 * * *"\n'), 2, 3, "hour: 25 is outside 0-23"),
        (journey("  pass\n", '  trigger schedule "0 9 * *"\n'), 2, 3, "5 fields"),
        (journey("  pass\n", "  trigger when event.amount > 1\n"), 2, 16, "there is no event here"),
        (journey("  pass\n", '  trigger api\n  audience event.x == 1\n'), 3, 12, "there is no event here"),
        (journey("  pass\n", '  trigger api\n  timezone "Asia/Nowhere"\n'), 3, 3, "unknown time zone"),
        (journey("  pass\n", '  trigger api\n  quiet hours 09:00-09:00\n'), 3, 3, "same time"),
        (journey("  pass\n", '  trigger api\n  frequency cap 0 messages per 1d\n'), 3, 3, "at least 1"),
        (journey("  pass\n", '  trigger api\n  goal "g" when user.a within 1d\n  goal "g" when user.b within 1d\n'),
         4, 3, "defined twice"),
        (journey("  pass\n", '  trigger api\n  exit when event.x\n'), 3, 13, "there is no event here"),
        (journey("  wait 0s\n"), 4, 3, "longer than zero"),
        (journey("  wait 0 days\n"), 4, 3, "longer than zero"),
        (journey('  split "s":\n    50%:\n      pass\n    40%:\n      pass\n'), 4, 3, "add up to 90%"),
        (journey('  split "s":\n    50% control:\n      pass\n    50% control:\n      pass\n'), 7, 5,
         "at most one control"),
        (journey('  wait for event "buy" up to 1d:\n    received:\n      pass\n'), 4, 3, "no timeout: branch"),
        (journey('  wait for event "buy" up to 1d:\n    timeout:\n      pass\n'), 4, 3, "no received: branch"),
        (journey("  exit\n  wait 1d\n"), 5, 3, "can never run"),
        (journey('  if user.a:\n    exit\n  else:\n    exit\n  wait 1d\n'), 8, 3, "can never run"),
        (journey('  send sms "hi" title "t"\n'), 4, 3, "only for push"),
        (journey('  send sms "hi {{ nobody }}"\n'), 4, 3, "unknown name 'nobody'"),
        (journey('  send sms "hi {{ user.name "\n'), 4, 3, "template error"),
        (journey('  send push "   "\n'), 4, 3, "message is empty"),
        (journey("  if nope(user.a):\n    pass\n"), 4, 6, "unknown function 'nope'"),
        (journey("  if lower(user.a, user.b):\n    pass\n"), 4, 6, "takes 1 argument, not 2"),
        (journey("  if ghost.a:\n    pass\n"), 4, 6, "unknown name 'ghost'"),
        (journey("  if user == 1:\n    pass\n"), 4, 6, "user needs a field"),
        (journey("  update user.tags = 1\n"), 4, 3, "add tag"),
        (journey('  update user.points += "x"\n'), 4, 3, "needs a number"),
        (journey('  call webhook "ftp://example.com"\n'), 4, 3, "not an http(s) URL"),
        (journey('  @a wait 1d\n  @a wait 2d\n'), 5, 3, "@a is used twice"),
        (journey('  issue coupon "P" as c\n  issue coupon "P" as c\n'), 5, 3, "already set on this path"),
        (journey('  issue coupon "P" as c\n  if user.a:\n    issue coupon "Q" as c\n'), 6, 5,
         "already set on this path"),
        (journey('  issue coupon "P" as user\n'), 4, 3, "reserved"),
        (journey("  if count of \"buy\" where event.x within 0s > 1:\n    pass\n"), 4, 6, "longer than zero"),
    ],
)
def test_each_rule_is_located(text: str, line: int, column: int, message: str) -> None:
    found_line, found_column, found_message = only_problem(text)
    assert message in found_message
    assert (found_line, found_column) == (line, column)


def test_a_result_is_visible_after_its_step_and_not_before_or_outside_its_branch() -> None:
    text = journey(
        '  send sms "{{ c.code }}"\n'  # line 4: before
        '  if user.a:\n'
        '    issue coupon "P" as c\n'
        '    send sms "{{ c.code }}"\n'  # line 7: fine
        '  send sms "{{ c.code }}"\n'  # line 8: outside the branch
    )
    assert [line for line, _, _ in problems(text)] == [4, 8]


def test_event_is_usable_in_steps_only_when_every_trigger_is_an_event() -> None:
    steps = '  send sms "{{ event.sku }}"\n  if event.amount > 1:\n    pass\n'
    validate(parse(journey(steps)), journey(steps))
    mixed = journey(steps, '  trigger event "purchase"\n  trigger api\n')
    assert [line for line, _, _ in problems(mixed)] == [5, 6]


def test_event_is_always_usable_in_a_where_about_an_event() -> None:
    text = journey(
        '  wait for event "buy" where event.sku == "x" up to 1d:\n    received:\n      pass\n'
        '    timeout:\n      pass\n',
        '  trigger api\n  exit on event "buy" where event.x\n  goal "g" on event "buy" where event.y within 1d\n'
        '  audience count of "buy" where event.z == 1 within 30d > 0\n',
    )
    validate(parse(text), text)


def test_catalog_references_are_checked_only_when_known() -> None:
    text = journey('  send push template "welcome"\n  issue coupon "SPRING" as c\n')
    validate(parse(text), text)  # nothing known: nothing to check against
    catalog = Catalog(templates=frozenset({"hello"}), coupon_pools=frozenset({"AUTUMN"}))
    found = problems(text, catalog)
    assert [(line, message) for line, _, message in found] == [
        (4, "unknown template 'welcome'"),
        (5, "unknown coupon pool 'SPRING'"),
    ]


def test_every_problem_is_reported_at_once_with_caret_lines() -> None:
    text = journey("  wait 0s\n  if nope():\n    pass\n  exit\n  pass\n")
    with pytest.raises(JourneyInvalid) as caught:
        validate(parse(text), text)
    rendered = caught.value.render("t.journey")
    assert [d.line for d in caught.value.diagnostics] == [4, 5, 8]
    assert "t.journey:5:6: unknown function 'nope'\n      if nope():\n         ^^^^" in rendered


def test_a_valid_journey_passes() -> None:
    text = journey(
        '  @w wait 2d\n  wait until monday 09:00\n  if exists(user.phone) and days_since(user.joined) > 30:\n'
        '    send sms "Hi {{ user.name | default(\'there\') }}"\n  elif len(user.tags) == 0:\n'
        '    send push "x" title "{{ user.name }}"\n  else:\n    exit\n'
        '  call webhook "https://crm.example.com/points" with {"id": user.id, "n": 1 + 2} as reply\n'
        '  update user.last = reply.status\n  update user.points -= 5\n  remove tag "lapsing"\n'
    )
    validate(parse(text), text)


def test_sibling_branches_may_set_the_same_result_and_it_is_usable_after_when_all_do() -> None:
    text = journey(
        '  if user.spend > 1000:\n    issue coupon "BIG" as offer\n'
        '  elif user.spend > 100:\n    issue coupon "MID" as offer\n'
        '  else:\n    exit\n'  # an exiting branch need not set it: it never reaches the rejoin
        '  send sms "{{ offer.code }}"\n'
        '  split "s":\n    50%:\n      call webhook "https://a.example.com" as reply\n'
        '    50%:\n      call webhook "https://b.example.com" as reply\n'
        '  update user.last = reply.status\n'
    )
    validate(parse(text), text)


@pytest.mark.parametrize(
    ("branches", "line"),
    [
        ('  if user.a:\n    issue coupon "P" as c\n', 6),  # no else: the fall-through sets nothing
        ('  if user.a:\n    issue coupon "P" as c\n  else:\n    pass\n', 8),
        ('  wait for event "x" up to 1d:\n    received:\n      issue coupon "P" as c\n'
         '    timeout:\n      pass\n', 9),
    ],
)
def test_a_result_set_on_only_some_paths_is_not_usable_after(branches: str, line: int) -> None:
    text = journey(branches + '  send sms "{{ c.code }}"\n')
    assert [(found_line, message) for found_line, _, message in problems(text)] == [
        (line, "message: unknown name 'c' in the template")]


def test_a_calendar_wait_counts_whole_days() -> None:
    """The parser only builds whole days; a model built by a program (the builder) might not."""
    text = journey("  @w wait 2 days\n")
    validate(parse(text), text)
    odd = parse(text)
    odd = m.Journey(odd.name, odd.triggers, steps=(m.Wait(36 * 3600, calendar=True, label="w"),))
    with pytest.raises(JourneyInvalid, match="counts whole days"):
        validate(odd, text)


def test_the_new_forms_pass() -> None:
    text = journey(
        "  @later wait 2 days\n  @week wait 1 week\n  @exact wait 48h\n",
        '  trigger schedule "30 9 * * *" in user zone\n  trigger schedule "0 3 * * *" in journey zone\n'
        '  goal "bought" on event "purchase" within 14d then exit\n'
        '  goal "spent" when user.total_spend >= 100 within 7d then exit\n',
    )
    validate(parse(text), text)
