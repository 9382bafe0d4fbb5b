"""Canvas edits on the model: after any edit, formatting and parsing give the edited model
back (so the DSL text can stay the source of truth), and each edit does what it says."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder_ui import edits
from dsl import model as m
from dsl.formatter import format_journey
from dsl.parser import parse
from tests.dsl.strategies import journeys, steps

PROPERTIES = settings(max_examples=50, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def roundtrips(journey: m.Journey) -> None:
    assert parse(format_journey(journey)) == journey


def all_steps(journey: m.Journey) -> list[m.Step]:
    return [step for _, step in edits.paths(journey)]


def leaves(journey: m.Journey) -> list[m.Step]:
    return [s for s in all_steps(journey) if not m.child_blocks(s) and s != edits.BARE_PASS]


@PROPERTIES
@given(journeys, steps, st.data())
def test_insert_then_format_then_parse_gives_the_edited_model(journey: m.Journey, step: m.Step,
                                                              data: st.DataObject) -> None:
    block = data.draw(st.sampled_from(edits.blocks(journey)))
    before = edits.block_at(journey, block)
    index = data.draw(st.integers(0, len(before)))
    edited = edits.insert_step(journey, block, index, step)
    roundtrips(edited)
    after = edits.block_at(edited, block)
    if before == (edits.BARE_PASS,):
        assert after == (step,)
    else:
        assert after == (*before[:index], step, *before[index:])


@PROPERTIES
@given(journeys, st.data())
def test_delete_then_format_then_parse_gives_the_edited_model(journey: m.Journey, data: st.DataObject) -> None:
    path, _ = data.draw(st.sampled_from(edits.paths(journey)))
    edited = edits.delete_step(journey, path)
    roundtrips(edited)
    before = edits.block_at(journey, path[:-1])
    expected = before[:path[-1]] + before[path[-1] + 1:]
    assert edits.block_at(edited, path[:-1]) == (expected or (edits.BARE_PASS,))


@PROPERTIES
@given(journeys, st.data())
def test_move_keeps_every_step_and_roundtrips(journey: m.Journey, data: st.DataObject) -> None:
    path, step = data.draw(st.sampled_from(edits.paths(journey)))
    targets = [b for b in edits.blocks(journey) if b[:len(path)] != path]
    block = data.draw(st.sampled_from(targets))
    index = data.draw(st.integers(0, len(edits.block_at(journey, block))))
    edited = edits.move_step(journey, path, block, index)
    roundtrips(edited)
    assert step in all_steps(edited)
    # Moving adds a bare `pass` where it empties a block and removes one where it fills it;
    # every other simple step is still there, exactly once (compound ones change inside).
    assert sorted(map(repr, leaves(journey))) == sorted(map(repr, leaves(edited)))


@PROPERTIES
@given(journeys, st.data())
def test_branches_added_and_removed_roundtrip_and_keep_split_shares(journey: m.Journey,
                                                                    data: st.DataObject) -> None:
    compound = [(p, s) for p, s in edits.paths(journey) if isinstance(s, m.If | m.Split)]
    if not compound:
        return
    path, step = data.draw(st.sampled_from(compound))
    added = edits.add_branch(journey, path)
    roundtrips(added)
    grown = edits.step_at(added, path)
    assert len(m.child_blocks(grown)) == len(m.child_blocks(step)) + 1
    if isinstance(step, m.Split):
        assert isinstance(grown, m.Split)
        assert math.isclose(sum(a.percent for a in grown.arms), sum(a.percent for a in step.arms))
    branch = data.draw(st.integers(0, len(m.child_blocks(grown)) - 1))
    try:
        removed = edits.remove_branch(added, path, branch)
    except edits.EditError:
        assert isinstance(grown, m.If) and branch < len(grown.arms) and len(grown.arms) == 1
        return
    roundtrips(removed)
    assert len(m.child_blocks(edits.step_at(removed, path))) == len(m.child_blocks(grown)) - 1


SOURCE = """journey "Moves"
  trigger event "signup"

  @a wait 1d
  @b if "vip" in user.tags:
    @c add tag "x"
  else:
    @d add tag "y"
  @e send sms "hi"
"""


def labels(journey: m.Journey) -> list[str | None]:
    return [s.label for s in all_steps(journey)]


@pytest.mark.parametrize(("path", "block", "index", "expected"), [
    ((0,), (), 3, ["b", "c", "d", "e", "a"]),  # to the end of its own block
    ((2,), (), 0, ["e", "a", "b", "c", "d"]),  # to the start
    ((0,), (1, 1), 0, ["b", "c", "a", "d", "e"]),  # into a later sibling's block: that sibling's index shifts
    ((1, 0, 0), (), 0, ["c", "a", "b", None, "d", "e"]),  # out of a block, which keeps a `pass`
    ((2,), (1, 0), 1, ["a", "b", "c", "e", "d"]),
    ((0,), (), 1, ["a", "b", "c", "d", "e"]),  # onto its own place: nothing changes
])
def test_moves(path: edits.StepPath, block: edits.BlockPath, index: int, expected: list[str | None]) -> None:
    moved = edits.move_step(parse(SOURCE), path, block, index)
    assert labels(moved) == expected
    roundtrips(moved)


def test_a_step_cannot_move_into_itself() -> None:
    with pytest.raises(edits.EditError, match="into itself"):
        edits.move_step(parse(SOURCE), (1,), (1, 0), 0)


@pytest.mark.parametrize("path", [(9,), (0, 0, 0), (1, 5, 0), (1, 0, 3)])
def test_a_stale_path_is_refused(path: edits.StepPath) -> None:
    with pytest.raises(edits.EditError):
        edits.delete_step(parse(SOURCE), path)


def test_inserting_into_a_bare_pass_replaces_it() -> None:
    journey = edits.delete_step(parse(SOURCE), (1, 0, 0))
    assert edits.block_at(journey, (1, 0)) == (m.Pass(),)
    filled = edits.insert_step(journey, (1, 0), 1, m.ExitStep(label="z"))
    assert edits.block_at(filled, (1, 0)) == (m.ExitStep(label="z"),)


def test_a_new_split_arm_takes_half_of_the_largest_share() -> None:
    journey = parse('journey "S"\n  trigger api\n\n  @s split "t":\n    70%:\n      pass\n'
                    '    30% control:\n      pass\n')
    split = edits.step_at(edits.add_branch(journey, (0,)), (0,))
    assert isinstance(split, m.Split)
    assert [(a.percent, a.control) for a in split.arms] == [(35.0, False), (30.0, True), (35.0, False)]


def test_an_if_gains_an_else_first_then_elifs() -> None:
    journey = edits.remove_branch(parse(SOURCE), (1,), 1)
    with_else = edits.step_at(edits.add_branch(journey, (1,)), (1,))
    assert isinstance(with_else, m.If) and with_else.otherwise == m.Branch((m.Pass(),))
    with_elif = edits.step_at(edits.add_branch(parse(SOURCE), (1,)), (1,))
    assert isinstance(with_elif, m.If) and len(with_elif.arms) == 2


def test_replacing_settings_keeps_goal_exits_and_schedule_zones() -> None:
    settings = parse('journey "New"\n  trigger schedule "0 3 * * *" in journey zone\n'
                     '  goal "bought" on event "purchase" within 14d then exit\n\n  pass\n')
    edited = edits.replace_settings(parse(SOURCE), settings)
    assert edited.triggers == (m.ScheduleTrigger("0 3 * * *", "journey"),)
    assert [goal.then_exit for goal in edited.goals] == [True]
    assert edited.steps == parse(SOURCE).steps
    roundtrips(edited)


def test_a_calendar_wait_moves_and_roundtrips_as_a_calendar_wait() -> None:
    journey = edits.insert_step(parse(SOURCE), (), 0, m.Wait(2 * 86_400, calendar=True, label="later"))
    moved = edits.move_step(journey, (0,), (2, 1), 0)
    roundtrips(moved)
    assert edits.step_at(moved, (1, 1, 0)) == m.Wait(2 * 86_400, calendar=True, label="later")
    assert "  @later wait 2 days\n" in format_journey(moved)
