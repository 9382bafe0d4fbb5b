"""Canvas edits on the model: after any edit, formatting and parsing give the edited model
back (so the DSL text can stay the source of truth), and each edit does what it says."""

from __future__ import annotations

import html
import math
import re

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder_ui import edits
from dsl import model as m
from dsl.formatter import format_journey
from dsl.parser import parse
from tests.dsl.strategies import journeys, steps

from .conftest import Builder
from .test_routes import create

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
        before = sum(a.percent for a in step.arms)
        assert math.isclose(sum(a.percent for a in grown.arms), max(before, 100))  # the new arm fills to 100%
        changed = [i for i, (a, b) in enumerate(zip(step.arms, grown.arms, strict=False)) if a != b]
        assert len(changed) <= 1 and (not changed or before >= 100)  # at most the donor gives up a share
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


def _split(*arms: str) -> m.Journey:
    return parse('journey "S"\n  trigger api\n\n  @s split "t":\n'
                 + "".join(f"    {arm}:\n      pass\n" for arm in arms))


def test_a_new_split_arm_takes_half_of_the_largest_share_when_the_others_fill_100() -> None:
    journey = _split("70%", "30% control")
    split = edits.step_at(edits.add_branch(journey, (0,)), (0,))
    assert isinstance(split, m.Split)
    assert [(a.percent, a.control) for a in split.arms] == [(35.0, False), (30.0, True), (35.0, False)]
    assert edits.branch_added(edits.step_at(journey, (0,))) == (
        "New branch C gets 35%, half of branch A's share (now 35%); the other branches keep theirs. "
        "Change the shares in the split's form.")


def test_a_new_split_arm_keeps_the_other_shares_and_leaves_the_smaller_ones_alone() -> None:
    split = edits.step_at(edits.add_branch(_split("40%", "35%", "25%"), (0,)), (0,))
    assert isinstance(split, m.Split)
    assert [a.percent for a in split.arms] == [20.0, 35.0, 25.0, 20.0]


def test_a_new_split_arm_gets_what_the_others_leave_to_100() -> None:
    journey = _split("60%", "30%")
    split = edits.step_at(edits.add_branch(journey, (0,)), (0,))
    assert isinstance(split, m.Split)
    assert [a.percent for a in split.arms] == [60.0, 30.0, 10.0]
    assert edits.branch_added(edits.step_at(journey, (0,))).startswith("New branch C gets 10%, what the others left")


def test_the_control_keeps_its_size_unless_it_is_all_there_is() -> None:
    assert edits.new_arm_share((m.SplitArm(90, True, ()), m.SplitArm(10, False, ()))) == (5.0, 1)
    assert edits.new_arm_share((m.SplitArm(100, True, ()),)) == (50.0, 0)


def test_plus_branch_on_an_if_adds_an_else_if_before_the_else_that_nobody_takes_yet() -> None:
    with_elif = edits.step_at(edits.add_branch(parse(SOURCE), (1,)), (1,))
    assert isinstance(with_elif, m.If) and len(with_elif.arms) == 2
    assert with_elif.arms[1].condition == m.Lit(False)
    assert with_elif.otherwise == edits.step_at(parse(SOURCE), (1,)).otherwise  # type: ignore[union-attr]
    without_else = edits.remove_branch(parse(SOURCE), (1,), 1)
    grown = edits.step_at(edits.add_branch(without_else, (1,)), (1,))
    assert isinstance(grown, m.If) and len(grown.arms) == 2 and grown.otherwise is None


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


# --------------------------------------------------------------------------- over HTTP: undo, insert, + branch

REV_SOURCE = re.compile(r'id="rev" name="rev" value="([^"]+)" data-source="([^"]*)"( data-refused)?')


def _rev_and_source(response: httpx.Response) -> tuple[str, str, bool]:
    found = REV_SOURCE.search(response.text)
    assert found is not None, response.text[:500]
    return found.group(1), html.unescape(found.group(2)), found.group(3) is not None


def _journey(b: Builder, source: str) -> tuple[str, str]:
    slug = create(b, "Edits")
    csrf = b.csrf(f"/builder/journeys/{slug}")
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": source}, csrf).status_code == 200
    return slug, csrf


def test_restore_saves_an_earlier_text_only_over_the_text_the_window_shows(signed_in: Builder) -> None:
    slug, csrf = _journey(signed_in, SOURCE)
    base = f"/builder/journeys/{slug}"
    before = signed_in.rev(slug)
    deleted = signed_in.htmx(f"{base}/delete", {"rev": before, "path": "0"}, csrf)
    after, shown, refused = _rev_and_source(deleted)
    assert "@a wait" not in shown and not refused

    undone = signed_in.htmx(f"{base}/restore", {"rev": after, "source": SOURCE, "direction": "undo"}, csrf)
    assert undone.status_code == 200 and "Undone." in undone.text
    rev, shown, refused = _rev_and_source(undone)
    assert shown == SOURCE and rev == before and not refused
    assert 'hx-target="#dsl-text"' in undone.text  # the whole workspace, text included

    # Another window saves meanwhile: this window's redo (made on `before`) is refused.
    signed_in.htmx(f"{base}/text", {"source": SOURCE.replace('"hi"', '"hello"')}, csrf)
    redo = signed_in.htmx(f"{base}/restore", {"rev": before, "source": "whatever", "direction": "redo"}, csrf)
    assert redo.status_code == 409 and "The journey changed in another window" in redo.text
    _, shown, refused = _rev_and_source(redo)
    assert '"hello"' in shown and refused
    assert signed_in.htmx(f"{base}/restore", {"rev": before, "source": SOURCE}).status_code == 403  # no token


def test_an_insert_answers_with_the_new_steps_form_on_its_way(signed_in: Builder) -> None:
    slug, csrf = _journey(signed_in, SOURCE)
    base = f"/builder/journeys/{slug}"
    inserted = signed_in.htmx(f"{base}/insert", {"rev": signed_in.rev(slug), "kind": "tag", "block": "1.0",
                                                 "index": "1"}, csrf)
    assert inserted.status_code == 200
    assert f'hx-get="{base}/step?path=1.0.1" hx-trigger="load"' in inserted.text
    emptied = edits.delete_step(parse(SOURCE), (1, 0, 0))
    assert edits.inserted_at(emptied, (1, 0), 1) == (1, 0, 0)  # a bare pass is replaced: first place
    assert edits.inserted_at(parse(SOURCE), (), 3) == (3,)


def test_plus_branch_says_where_the_new_arms_share_came_from(signed_in: Builder) -> None:
    slug, csrf = _journey(signed_in, 'journey "S"\n  trigger api\n\n  @s split "t":\n    50%:\n      pass\n'
                                     '    50%:\n      pass\n')
    added = signed_in.htmx(f"/builder/journeys/{slug}/branches/add", {"rev": signed_in.rev(slug), "path": "0"}, csrf)
    shown = html.unescape(added.text)
    assert "New branch C gets 25%, half of branch A's share (now 25%); the other branches keep theirs." in shown
    _, source, _ = _rev_and_source(added)
    assert "    25%:\n      pass\n    50%:\n      pass\n    25%:\n      pass\n" in source
