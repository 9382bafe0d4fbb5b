"""The example journeys and every `journey` block of the DSL reference parse, validate, compile,
and are written in canonical form: formatting them gives back the very same text."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from dsl import Catalog, compile_source
from dsl import model as m
from dsl.formatter import format_journey
from dsl.ids import walk_steps
from dsl.parser import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "journeys"
REFERENCE = ROOT / "docs" / "dsl.md"

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.journey"))

# The seed cases each need a file of their own (examples/journeys/README.md says which is which).
REQUIRED_EXAMPLES = (
    "lens_care_buyers_to_lenses", "lens_buyers_to_care_solution", "lens_never_bought_trial",
    "welcome_onboarding", "one_id_bind_invitation", "referral_reward", "super_user_upgrade",
    "win_back", "cart_abandonment", "birthday_coupon", "lifecycle_stages", "ab_message_test",
)

_FENCE = re.compile(r"^```journey[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _reference_blocks() -> list[tuple[int, str]]:
    """(line of the opening fence, text) for each ```journey block in the reference."""
    text = REFERENCE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, found.start()) + 1, found.group(1)) for found in _FENCE.finditer(text)]


REFERENCE_BLOCKS = _reference_blocks()


def _assert_canonical(text: str) -> m.Journey:
    journey = parse(text)
    formatted = format_journey(journey)
    assert format_journey(parse(formatted)) == formatted, "formatting is not a fixed point"
    assert formatted == text, "not in canonical form: run `journeyflow fmt` on it"
    return journey


# ------------------------------------------------------------------------------ examples


def test_every_seed_case_has_an_example() -> None:
    names = {path.stem for path in EXAMPLE_FILES}
    assert set(REQUIRED_EXAMPLES) <= names, f"missing: {sorted(set(REQUIRED_EXAMPLES) - names)}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_parses_and_is_canonical(path: Path) -> None:
    _assert_canonical(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_is_documented(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    journey = parse(text)
    assert text.startswith("# "), "start with a comment that explains the business case"
    assert journey.goals, "state a goal with a window"
    assert all(step.label for step in journey.steps), "label the main (top-level) steps"
    assert f"`{path.name}`" in (EXAMPLES / "README.md").read_text(encoding="utf-8")


def test_catalog_lists_exactly_what_the_examples_use() -> None:
    catalog = tomllib.loads((EXAMPLES / "catalog.toml").read_text(encoding="utf-8"))
    templates: set[str] = set()
    pools: set[str] = set()
    for path in EXAMPLE_FILES:
        for step in walk_steps(parse(path.read_text(encoding="utf-8")).steps):
            if isinstance(step, m.Send) and step.template is not None:
                templates.add(step.template)
            elif isinstance(step, m.IssueCoupon):
                pools.add(step.pool)
    assert sorted(catalog["templates"]) == sorted(templates)
    assert sorted(catalog["coupon_pools"]) == sorted(pools)


# ------------------------------------------------------------------------------ reference


def test_reference_has_journey_blocks() -> None:
    assert len(REFERENCE_BLOCKS) >= 20


@pytest.mark.parametrize(
    "text", [text for _, text in REFERENCE_BLOCKS], ids=[f"dsl.md:{line}" for line, _ in REFERENCE_BLOCKS]
)
def test_reference_block_parses_and_is_canonical(text: str) -> None:
    _assert_canonical(text)


@pytest.mark.parametrize(
    "text", [text for _, text in REFERENCE_BLOCKS], ids=[f"dsl.md:{line}" for line, _ in REFERENCE_BLOCKS]
)
def test_reference_block_validates_and_compiles(text: str) -> None:
    """What `journeyflow check` does: every example in the reference must pass it."""
    assert compile_source(text).nodes is not None


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_validates_against_the_catalog_and_compiles(path: Path) -> None:
    catalog = tomllib.loads((EXAMPLES / "catalog.toml").read_text(encoding="utf-8"))
    known = Catalog(frozenset(catalog["templates"]), frozenset(catalog["coupon_pools"]))
    compiled = compile_source(path.read_text(encoding="utf-8"), known)
    assert compiled.goals, "every example states its goal"
