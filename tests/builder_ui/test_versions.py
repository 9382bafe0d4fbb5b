"""Comparing two versions: lines side by side, and steps marked added, removed or changed by id."""

from __future__ import annotations

from builder_ui import canvas as cv
from builder_ui.versions import ADDED, CHANGED, REMOVED, Line, step_marks, text_rows

OLD = """journey "J"
  trigger event "signup"

  @hello send sms "Hi"
  @offer split "offer":
    50% control:
      pass
    50%:
      @push send push template "a"
  @gone wait 1d
"""


def test_equal_texts_have_no_marks() -> None:
    rows = text_rows(OLD, OLD)
    assert all(old.mark == new.mark == "" and old.number == new.number for old, new in rows)
    assert step_marks(cv.build(OLD), cv.build(OLD)) == ({}, {})


def test_lines_are_paired_and_gaps_face_added_lines() -> None:
    rows = text_rows("a\nb\nc\n", "a\nB\nc\nd\n")
    assert rows == [
        (Line(1, "a", ""), Line(1, "a", "")),
        (Line(2, "b", REMOVED), Line(2, "B", ADDED)),
        (Line(3, "c", ""), Line(3, "c", "")),
        (Line(None, "", ""), Line(4, "d", ADDED)),
    ]
    assert text_rows("a\nb\n", "a\n")[-1] == (Line(2, "b", REMOVED), Line(None, "", ""))


def test_steps_are_matched_by_id_and_marked() -> None:
    new = (OLD.replace('"Hi"', '"Hello"')  # changed text: the same step, changed
           .replace("  @gone wait 1d\n", "  @tag add tag \"x\"\n")  # one step removed, one added
           .replace("    50% control:", "    40% control:").replace("    50%:", "    60%:"))  # shares: the split
    old_marks, new_marks = step_marks(cv.build(OLD), cv.build(new))
    assert old_marks == {"hello": CHANGED, "offer": CHANGED, "gone": REMOVED}
    assert new_marks == {"hello": CHANGED, "offer": CHANGED, "tag": ADDED}


def test_a_step_moved_into_a_branch_keeps_its_id_and_is_not_marked() -> None:
    moved = OLD.replace('  @hello send sms "Hi"\n', "").replace(
        '      @push send push template "a"\n', '      @push send push template "a"\n      @hello send sms "Hi"\n')
    old_marks, new_marks = step_marks(cv.build(OLD), cv.build(moved))
    assert old_marks == new_marks == {}
