"""Canvas edits as pure operations on the DSL model.

The DSL text is the source of truth: the canvas is drawn from a parse of it, and an edit on
the canvas is applied here, to the parsed `Journey`, which is then formatted back to text.
Nothing here touches text, storage or HTTP, so every operation is checked by property tests:
apply an edit, format, parse, and the result equals the edited model.

Steps are addressed by position, not by id, because hand-written journeys may repeat derived
ids until they are labelled. A `StepPath` alternates step indexes and block indexes: `(3,)` is
the fourth top-level step, `(3, 1, 0)` the first step of that step's second block (the
`else` of an `if`, the second arm of a split, the `timeout:` of a `wait for event`). A
`BlockPath` is the same without the last step index: `()` is the top level, `(3, 1)` that
second block. Blocks are numbered as `dsl.model.child_blocks` lists them.

A block may never be empty (the grammar wants at least one step), so deleting its last step
leaves a `pass`, and inserting into a block holding only a bare `pass` replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dsl import model as m

StepPath = tuple[int, ...]
BlockPath = tuple[int, ...]
Steps = tuple[m.Step, ...]

BARE_PASS = m.Pass()


class EditError(ValueError):
    """An edit that cannot apply to this journey (a stale path, a move into itself...)."""


# --------------------------------------------------------------------------- addressing


def with_blocks(step: m.Step, blocks: tuple[Steps, ...]) -> m.Step:
    """`step` with its child blocks replaced, in `child_blocks` order."""
    if isinstance(step, m.If):
        arms = tuple(replace(arm, steps=steps) for arm, steps in zip(step.arms, blocks, strict=False))
        otherwise = replace(step.otherwise, steps=blocks[len(arms)]) if step.otherwise is not None else None
        return replace(step, arms=arms, otherwise=otherwise)
    if isinstance(step, m.Split):
        return replace(step, arms=tuple(replace(arm, steps=s) for arm, s in zip(step.arms, blocks, strict=True)))
    if isinstance(step, m.WaitForEvent):
        remaining = list(blocks)
        received = replace(step.received, steps=remaining.pop(0)) if step.received is not None else None
        timeout = replace(step.timeout, steps=remaining.pop(0)) if step.timeout is not None else None
        return replace(step, received=received, timeout=timeout)
    if blocks:
        raise EditError(f"a {type(step).__name__} step has no blocks")
    return step


def _child_block(steps: Steps, index: int, block: int) -> Steps:
    if not 0 <= index < len(steps):
        raise EditError(f"no step {index} here: the journey may have changed")
    blocks = m.child_blocks(steps[index])
    if not 0 <= block < len(blocks):
        raise EditError(f"step {index} has no block {block}")
    return blocks[block]


def block_at(journey: m.Journey, block: BlockPath) -> Steps:
    if len(block) % 2:
        raise EditError("a block path has an even length")
    steps = journey.steps
    for i in range(0, len(block), 2):
        steps = _child_block(steps, block[i], block[i + 1])
    return steps


def step_at(journey: m.Journey, path: StepPath) -> m.Step:
    if len(path) % 2 != 1:
        raise EditError("a step path has an odd length")
    steps = block_at(journey, path[:-1])
    if not 0 <= path[-1] < len(steps):
        raise EditError(f"no step {path[-1]} here: the journey may have changed")
    return steps[path[-1]]


def _map_block(steps: Steps, block: BlockPath, change: Callable[[Steps], Steps]) -> Steps:
    if not block:
        return _never_empty(change(steps))
    index, which = block[0], block[1]
    _child_block(steps, index, which)  # validates the address
    step = steps[index]
    blocks = list(m.child_blocks(step))
    blocks[which] = _map_block(blocks[which], block[2:], change)
    return (*steps[:index], with_blocks(step, tuple(blocks)), *steps[index + 1:])


def _never_empty(steps: Steps) -> Steps:
    return steps or (BARE_PASS,)


def _edit_block(journey: m.Journey, block: BlockPath, change: Callable[[Steps], Steps]) -> m.Journey:
    if len(block) % 2:
        raise EditError("a block path has an even length")
    return replace(journey, steps=_map_block(journey.steps, block, change))


def _is_bare_pass(steps: Steps) -> bool:
    return len(steps) == 1 and steps[0] == BARE_PASS and steps[0].label is None


# --------------------------------------------------------------------------- steps


def insert_step(journey: m.Journey, block: BlockPath, index: int, step: m.Step) -> m.Journey:
    """Insert `step` at `index` of `block` (0 is first; `len(block)` is last)."""

    def change(steps: Steps) -> Steps:
        if not 0 <= index <= len(steps):
            raise EditError(f"no place {index} in that block")
        if _is_bare_pass(steps):
            return (step,)
        return (*steps[:index], step, *steps[index:])

    return _edit_block(journey, block, change)


def inserted_at(journey: m.Journey, block: BlockPath, index: int) -> StepPath:
    """Where `insert_step(journey, block, index, ...)` puts its step: at `index`, or first
    when it replaces the bare `pass` of an empty block."""
    return (*block, 0 if _is_bare_pass(block_at(journey, block)) else index)


def delete_step(journey: m.Journey, path: StepPath) -> m.Journey:
    step_at(journey, path)
    index = path[-1]
    return _edit_block(journey, path[:-1], lambda steps: (*steps[:index], *steps[index + 1:]))


def replace_step(journey: m.Journey, path: StepPath, step: m.Step) -> m.Journey:
    step_at(journey, path)
    index = path[-1]
    return _edit_block(journey, path[:-1], lambda steps: (*steps[:index], step, *steps[index + 1:]))


def move_step(journey: m.Journey, path: StepPath, block: BlockPath, index: int) -> m.Journey:
    """Move the step at `path` to place `index` of `block`, both read before the move."""
    step = step_at(journey, path)
    source_block, source_index = path[:-1], path[-1]
    if block[:len(path)] == path:
        raise EditError("a step cannot move into itself")
    target = list(block)
    depth = len(source_block)
    if target[:depth] == list(source_block):
        if len(target) == depth:  # the same block: the places after the step shift up by one
            if index in (source_index, source_index + 1):
                return journey
            if index > source_index:
                index -= 1
        elif target[depth] > source_index:  # a block inside a later sibling of the step
            target[depth] -= 1
    return insert_step(delete_step(journey, path), tuple(target), index, step)


# --------------------------------------------------------------------------- branches


def add_branch(journey: m.Journey, path: StepPath, condition: m.Expr | None = None) -> m.Journey:
    """Add a branch to an `if` or a split.

    An `if` gains an `elif` before its `else`, with `condition` or, by default, one that is
    never true: the new branch is empty, and until its condition is written nobody is moved
    out of the branches they took before. A split gains an arm whose share `new_arm_share`
    decides, so the marketer's other shares are kept (see there)."""
    step = step_at(journey, path)
    if isinstance(step, m.If):
        arm = m.CondBranch(condition if condition is not None else NEVER, (BARE_PASS,))
        new: m.Step = replace(step, arms=(*step.arms, arm))
    elif isinstance(step, m.Split):
        if not step.arms:
            raise EditError("the split has no arm to share")
        share, donor = new_arm_share(step.arms)
        arms = list(step.arms)
        if donor is not None:
            arms[donor] = replace(arms[donor], percent=arms[donor].percent - share)
        new = replace(step, arms=(*arms, m.SplitArm(share, False, (BARE_PASS,))))
    else:
        raise EditError("only an if or a split can take another branch")
    return replace_step(journey, path, new)


NEVER = m.Lit(False)


def new_arm_share(arms: tuple[m.SplitArm, ...]) -> tuple[float, int | None]:
    """The share a new split arm gets, and the arm it is taken from (None: nobody's).

    A marketer who set 60/30 and adds an arm means the missing 10% for it, so what the others
    leave to 100% goes to it and their shares stay as typed. When they already fill 100%, the
    largest arm that is not the control gives up half of itself (a control group keeps its
    size: shrinking it would weaken the test it is there for); the others stay."""
    remainder = round(100 - sum(a.percent for a in arms), 6)
    if remainder > 0:
        return remainder, None
    donor = max(range(len(arms)), key=lambda i: (not arms[i].control, arms[i].percent))
    return _half(arms[donor].percent), donor


def _half(percent: float) -> float:
    half = percent / 2
    return float(int(half)) if half >= 1 and not half.is_integer() else half


def branch_added(step: m.Step) -> str:
    """What "+ branch" did to `step` (as it was before), in the marketer's words, for the toast."""
    if isinstance(step, m.If):
        return "Added an “else if” branch. Write its condition in the step's form: until then nobody goes down it."
    if not isinstance(step, m.Split) or not step.arms:
        return "Branch added."
    share, donor = new_arm_share(step.arms)
    new = f"New branch {_letter(len(step.arms))} gets {_pct(share)}"
    if donor is None:
        return f"{new}, what the others left to 100%; their shares stay as they were."
    left = step.arms[donor].percent - share
    giver = "the control" if step.arms[donor].control else f"branch {_letter(donor)}"
    return (f"{new}, half of {giver}'s share (now {_pct(left)}); the other branches keep theirs. "
            "Change the shares in the split's form.")


def _letter(index: int) -> str:
    """As the canvas letters arms (`sentences.split_arm_titles`)."""
    return chr(ord("A") + index % 26)


def _pct(percent: float) -> str:
    return f"{percent:g}%"


def remove_branch(journey: m.Journey, path: StepPath, branch: int) -> m.Journey:
    """Remove block `branch` of an `if` (an arm, or the `else`) or a split (its share goes to
    the first remaining arm that is not the control)."""
    step = step_at(journey, path)
    if isinstance(step, m.If):
        if branch == len(step.arms) and step.otherwise is not None:
            new: m.Step = replace(step, otherwise=None)
        elif 0 <= branch < len(step.arms) and len(step.arms) > 1:
            conditions = step.arms[:branch] + step.arms[branch + 1:]
            comments = step.comments
            if branch == 0:  # the elif becomes the `if` line, whose comments the If step carries
                first = conditions[0].comments
                comments = m.Comments(comments.leading + first.leading,
                                      comments.trailing if comments.trailing is not None else first.trailing)
                conditions = (replace(conditions[0], comments=m.NO_COMMENTS), *conditions[1:])
            new = replace(step, arms=conditions, comments=comments)
        else:
            raise EditError("an if keeps at least one condition")
    elif isinstance(step, m.Split):
        if not 0 <= branch < len(step.arms) or len(step.arms) < 2:
            raise EditError("a split keeps at least one arm")
        removed = step.arms[branch]
        arms = list(step.arms[:branch] + step.arms[branch + 1:])
        heir = next((i for i, arm in enumerate(arms) if not arm.control), 0)
        arms[heir] = replace(arms[heir], percent=arms[heir].percent + removed.percent)
        new = replace(step, arms=tuple(arms))
    else:
        raise EditError("only an if or a split has branches to remove")
    return replace_step(journey, path, new)


# --------------------------------------------------------------------------- settings


def replace_settings(journey: m.Journey, settings: m.Journey) -> m.Journey:
    """`journey` with every setting taken from `settings` (a journey parsed from the settings
    panel's lines): the name, triggers, audience, entry, exits, goals, quiet hours, time zone
    and caps. Steps and comments of the journey line stay."""
    return replace(journey, name=settings.name, triggers=settings.triggers, audience=settings.audience,
                   entry=settings.entry, exits=settings.exits, goals=settings.goals,
                   quiet_hours=settings.quiet_hours, timezone=settings.timezone, caps=settings.caps)


# --------------------------------------------------------------------------- walking


def paths(journey: m.Journey) -> list[tuple[StepPath, m.Step]]:
    """Every step with its path, in document order."""
    out: list[tuple[StepPath, m.Step]] = []

    def walk(steps: Steps, prefix: tuple[int, ...]) -> None:
        for index, step in enumerate(steps):
            here = (*prefix, index)
            out.append((here, step))
            for which, block in enumerate(m.child_blocks(step)):
                walk(block, (*here, which))

    walk(journey.steps, ())
    return out


def blocks(journey: m.Journey) -> list[BlockPath]:
    """Every block's path, the top level first."""
    found: list[BlockPath] = [()]
    for path, step in paths(journey):
        found += [(*path, which) for which in range(len(m.child_blocks(step)))]
    return found
