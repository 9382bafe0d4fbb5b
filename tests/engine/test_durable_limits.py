"""durable-rules' hard limits: a journey that could cross one is refused when loaded, by name;
the 64 limit is also shown to be real (the others hang or fail the build; see limits.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import dsl
from engine.durable import DurableChildFailed, DurableError, DurableLimitExceeded, DurableMatcher
from engine.durable.limits import MAX_BRANCHES, MAX_MATCHING, MAX_RULES_PER_CHAIN, check
from engine.durable.supervisor import ChildProcess
from engine.durable.translate import translate

from .matcher_conformance import scope


def goals(count: int, where: str = "") -> dsl.CompiledJourney:
    """A journey entered on signup with `count` goals on purchases; `where` may use {i}."""
    lines = [f'  goal "g{i}" on event "purchase"{" where " + where.format(i=i) if where else ""} within 7d'
             for i in range(count)]
    return dsl.compile_source('journey "Many goals"\n  trigger event "signup"\n' + "\n".join(lines) + "\n\n  pass\n")


@pytest.fixture
def durable() -> Iterator[DurableMatcher]:
    with DurableMatcher() as matcher:
        yield matcher


# --------------------------------------------------------------------------- 64 conditions at once

# Below a purchase's own test, every `amount > i` can hold at once; with the catch-all rule's
# test beside it, 63 of them reach the stack bound of 64.
AT_THE_LIMIT = MAX_MATCHING - 1


def test_conditions_that_can_all_match_up_to_the_limit_evaluate(durable: DurableMatcher) -> None:
    durable.load({"v": goals(AT_THE_LIMIT, "event.amount > {i}")})
    decided = durable.on_event("purchase", scope({}, {"amount": 1_000}))
    assert decided.goals == {("v", f"g{i}") for i in range(AT_THE_LIMIT)}


def test_one_more_condition_that_can_match_is_refused_by_name(durable: DurableMatcher) -> None:
    with pytest.raises(DurableLimitExceeded) as refused:
        durable.load({"v": goals(AT_THE_LIMIT + 1, "event.amount > {i}")})
    message = str(refused.value)
    assert 'journey "Many goals"' in message and f'goal "g{AT_THE_LIMIT}"' in message
    assert f"{MAX_MATCHING + 1} conditions could match one \"purchase\" event" in message and "303" in message


def test_the_64_limit_is_real_without_the_guard() -> None:
    """Registered behind the guard's back, such a ruleset fails the fact with error 303, and
    deleting that session then often aborts the child (on the retry too): one or the other."""
    rules = translate("v", goals(MAX_MATCHING + 4, "event.amount > {i}"))
    child = ChildProcess()
    try:
        child.load({rules.name: rules.definition()})
        with pytest.raises(DurableError) as failed:
            child.evaluate([(rules.name, {"f": 1, "i": 1, "k": rules.events["purchase"], "n0": 1_000})])
        assert isinstance(failed.value, DurableChildFailed) or "error code: 303" in str(failed.value)
    finally:
        child.close()


def test_equalities_on_one_field_count_once(durable: DurableMatcher) -> None:
    """A fact has one value per field: 500 goals on different skus never match together."""
    durable.load({"v": goals(500, 'event.sku == "s{i}"')})
    assert durable.on_event("purchase", scope({}, {"sku": "s321"})).goals == {("v", "g321")}
    assert durable.on_event("purchase", scope({}, {"sku": "s500"})).goals == set()


def test_a_refused_load_leaves_the_live_journeys_running(durable: DurableMatcher) -> None:
    durable.load({"v": goals(2, "event.amount > {i}")})
    with pytest.raises(DurableLimitExceeded):
        durable.load({"w": goals(AT_THE_LIMIT + 1, "event.amount > {i}")})
    assert durable.on_event("purchase", scope({}, {"amount": 1})).goals == {("v", "g0")}


# --------------------------------------------------------------------------- 512 branches, 256 rules


def test_rules_on_one_field_beyond_512_are_refused_before_the_build_hangs() -> None:
    """With 513 different values tested after one condition, durable-rules' build never
    returns (measured): the check refuses first, naming the rule that would be the 513th."""
    over = goals(MAX_BRANCHES + 5, 'event.sku == "s{i}"')
    with pytest.raises(DurableLimitExceeded) as refused:
        check(translate("v", over))
    assert f'goal "g{MAX_BRANCHES}"' in str(refused.value) and "never returns" in str(refused.value)


def test_more_than_256_rules_with_the_same_conditions_are_refused() -> None:
    with pytest.raises(DurableLimitExceeded) as refused:
        check(translate("v", goals(MAX_RULES_PER_CHAIN + 1)))
    assert f'goal "g{MAX_RULES_PER_CHAIN}"' in str(refused.value) and "108" in str(refused.value)


def test_the_examples_are_within_every_limit() -> None:
    for path in sorted((Path(__file__).resolve().parents[2] / "examples/journeys").glob("*.journey")):
        check(translate(path.stem, dsl.compile_source(path.read_text(encoding="utf-8"))))
