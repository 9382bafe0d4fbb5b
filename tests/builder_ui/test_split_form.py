"""The split form names each arm: an example's `@arm_coupon 45%:` reads back into the form and
is written again as it was, so a split built in the builder can have the ids reports use."""

from __future__ import annotations

from builder_ui import forms
from dsl import model as m
from dsl.parser import parse

SPLIT = """journey "Split"
  trigger event "signup"

  @offer_test split "first-order offer":
    @arm_coupon 45%:
      pass
    45%:
      pass
    @arm_control 10% control:
      pass
"""


def split_of(source: str) -> m.Split:
    step = parse(source).steps[0]
    assert isinstance(step, m.Split)
    return step


def test_arm_labels_read_back_into_the_form() -> None:
    values = forms.step_fields(split_of(SPLIT))
    assert [values[f"arm_label_{i}"] for i in range(3)] == ["arm_coupon", "", "arm_control"]


def test_arm_labels_are_written_added_and_removed_from_the_form() -> None:
    old = split_of(SPLIT)
    values = forms.step_fields(old) | {"arm_label_0": "", "arm_label_1": "arm_free_shipping"}
    step, errors = forms.step_from_fields(old, values)
    assert errors == [] and isinstance(step, m.Split)
    assert [arm.label for arm in step.arms] == [None, "arm_free_shipping", "arm_control"]


def test_a_form_without_the_label_fields_keeps_the_labels() -> None:
    old = split_of(SPLIT)
    values = {k: v for k, v in forms.step_fields(old).items() if not k.startswith("arm_label_")}
    step, errors = forms.step_from_fields(old, values)
    assert errors == [] and isinstance(step, m.Split)
    assert [arm.label for arm in step.arms] == ["arm_coupon", None, "arm_control"]


def test_a_bad_arm_label_is_refused_on_its_field() -> None:
    old = split_of(SPLIT)
    step, errors = forms.step_from_fields(old, forms.step_fields(old) | {"arm_label_1": "2nd arm"})
    assert step is None
    assert [e.field for e in errors] == ["arm_label_1"]
