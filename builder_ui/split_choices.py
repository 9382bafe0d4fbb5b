"""Which arm of each split a simulation follows: the panel's choices, to and from the form.

Live, a person's arm is fixed by hashing their id (`engine.splits`), so one sample profile
always sees the same arm and the others cannot be tried without inventing users until one
hashes there. The simulation panel offers, for every split, "as assigned" (the hashing, as
live) or one arm by name; the choices reach the engine as `forced_arms` (split id -> arm
position). Nothing here reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dsl import graph as g
from dsl.formatter import format_percent
from dsl.numerals import ascii_digits

FIELD_PREFIX = "arm_of_"  # then the split's step id: `arm_of_offer_test`
AS_ASSIGNED = ""


@dataclass(frozen=True)
class SplitChoice:
    split_id: str
    name: str  # the split's name, as reports show it
    arms: tuple[str, ...]  # each arm's title, by position: "A · 45% (arm_coupon)", "Control · 10%"

    @property
    def field(self) -> str:
        return FIELD_PREFIX + self.split_id


def split_choices(journey: g.CompiledJourney) -> list[SplitChoice]:
    """The journey's splits in the order they are written, each with its arms' titles."""
    splits = sorted((n for n in journey.nodes.values() if isinstance(n, g.SplitNode)), key=lambda n: n.line)
    return [SplitChoice(n.id, n.name, tuple(_arm_title(i, arm, n.id) for i, arm in enumerate(n.arms)))
            for n in splits]


def _arm_title(index: int, arm: g.SplitArmSpec, split_id: str) -> str:
    """Lettered as the canvas letters arms (`sentences.split_arm_titles`), with the arm's own
    label when it has one, since that is what its messages and reports are known by."""
    letter = chr(ord("A") + index % 26)
    title = ("Control" if arm.control else letter) + f" · {format_percent(arm.percent)}"
    label = arm.id.removeprefix(split_id + ".")  # an unlabelled arm's id ends in its letter
    return title if label in (letter.lower(), "control", arm.id) else f"{title} ({label})"


def forced_arms(form: Mapping[str, str], choices: list[SplitChoice]) -> dict[str, int]:
    """The arms the form picks (split id -> arm position); a split left "as assigned", or
    given anything but one of its arms' positions, is not forced."""
    out: dict[str, int] = {}
    for choice in choices:
        raw = form.get(choice.field, AS_ASSIGNED).strip()
        if ascii_digits(raw) and int(raw) < len(choice.arms):
            out[choice.split_id] = int(raw)
    return out


def chosen(form: Mapping[str, str], choices: list[SplitChoice]) -> dict[str, str]:
    """The form's values for the choices, to draw them again as they were."""
    forced = forced_arms(form, choices)
    return {c.field: str(forced[c.split_id]) if c.split_id in forced else AS_ASSIGNED for c in choices}
