"""What the canvas draws: the journey text, parsed, as a tree of blocks and step nodes, with
every problem found in the text attached to the step it is about.

The canvas is always drawn from the text. Validation problems come with a line, and a step
owns the lines from its header to its last nested line, so each problem lands on the
innermost step holding its line; problems above the first step belong to the settings.

A syntax error leaves no model to draw, so the broken line is swapped for a neutral stand-in
of the same shape (`pass`, or `if true:` when it opens a block), keeping its `@label`, and the
text parsed again: the canvas then shows every other step as it is and the broken one, in
place, with its message. Edits are refused until the text parses, so a stand-in never reaches
the text.

What a card, a branch or the Start card says is in the marketer's words (`sentences`); the DSL
stays beside it (`Node.summary`, `Branch.dsl`, `Line.dsl`) for power users and for comparing
versions, which must not see a step as changed because its wording improved.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from dsl import JourneyError, JourneyInvalid, parse, validate
from dsl import model as m
from dsl.errors import Diagnostic
from dsl.formatter import format_expr, format_percent, format_setting, step_header
from dsl.ids import assign_ids
from dsl.parser import normalize

from . import edits, sentences
from .palette import BROKEN, Kind, kind_of

MAX_RECOVERIES = 10  # stand-ins tried before giving up on drawing a text that does not parse
_LABEL = re.compile(r"^\s*(@[A-Za-z_][A-Za-z0-9_]*\s+)")


def rev(source: str) -> str:
    """A short fingerprint of a text: edits name the text they were made on, and one made on
    an older text (another tab, another person) is refused rather than applied to the wrong step."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def encode(path: tuple[int, ...]) -> str:
    return ".".join(map(str, path))


def decode(text: str) -> tuple[int, ...]:
    """A path from a form field; anything malformed is an `EditError`, never a crash."""
    if not text:
        return ()
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        raise edits.EditError(f"not a step or block address: {text!r}") from None


@dataclass
class Problem:
    line: int
    column: int
    message: str
    hint: str | None
    syntax: bool
    step_id: str | None = None  # the step it was attached to; None for settings

    @property
    def words(self) -> str:
        """The problem as a card says it: no line number, which only the DSL panel shows."""
        return sentences.problem(self.message, self.hint, self.syntax, "step" if self.step_id else "setting")


@dataclass
class Node:
    path: str
    step_id: str
    kind: Kind
    summary: str  # the step's DSL header: the tooltip, and what version comparisons match on
    line: int
    sentence: sentences.Sentence = ()  # what the card says, in the marketer's words
    broken: str | None = None  # the text of a line that did not parse, drawn in the step's place
    problems: list[Problem] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)
    removable_branches: bool = False  # an if or a split: its branches can be added and removed
    can_add_branch: bool = False


@dataclass
class Block:
    path: str
    nodes: list[Node]  # a bare `pass` is not a node: its block is drawn as an empty lane

    @property
    def size(self) -> int:
        """Places to insert at: a block of only `pass` has one."""
        return len(self.nodes)


@dataclass
class Branch:
    title: str  # in words: "A · 45%", "Total spend is at least 1000", "Otherwise", "Received"
    index: int
    block: Block
    control: bool = False
    label: str | None = None  # a split arm's @label, shown small
    dsl: str = ""  # the branch's header in the text, for the tooltip


@dataclass(frozen=True)
class Line:
    """One line of the Start card: a setting in words, with its DSL text for the tooltip."""

    kind: str  # trigger, audience, entry, exit, goal, quiet, zone, cap: what the card groups by
    words: str
    dsl: str


@dataclass
class Canvas:
    source: str
    rev: str
    journey: m.Journey | None  # None when even stand-ins could not make the text parse
    parses: bool  # False: drawn from stand-ins, edits refused
    main: Block | None
    problems: list[Problem]
    triggers: list[str]
    settings_problems: list[Problem]
    start: list[Line] = field(default_factory=list)  # the settings in words, for the Start card

    @property
    def valid(self) -> bool:
        return not self.problems

    def first_syntax_problem(self) -> Problem | None:
        return next((p for p in self.problems if p.syntax), None)


def build(source: str) -> Canvas:
    """Parse, validate and lay out `source`."""
    journey, problems, broken = _parse_with_stand_ins(source)
    if journey is not None and not problems:
        problems = _validation_problems(journey, source)
    if journey is None:
        return Canvas(source, rev(source), None, False, None, problems, [], list(problems))
    ids = assign_ids(journey)
    lines = source.split("\n")
    nodes_by_line: dict[int, Node] = {}
    main = _block(journey.steps, (), ids, broken, lines, nodes_by_line)
    spans = _spans(journey)
    settings_problems = []
    for problem in problems:
        owner = _owner(problem.line, spans, nodes_by_line)
        if owner is None:
            settings_problems.append(problem)
        else:
            problem.step_id = owner.step_id
            owner.problems.append(problem)
    triggers = [_trigger_text(t) for t in journey.triggers]
    return Canvas(source, rev(source), journey, not broken, main, problems, triggers, settings_problems,
                  start_lines(journey))


_SETTING_KINDS = ((m.EventTrigger | m.ConditionTrigger | m.ScheduleTrigger | m.ApiTrigger, "trigger"),
                  (m.Audience, "audience"), (m.Entry, "entry"), (m.ExitOnEvent | m.ExitWhen, "exit"),
                  (m.Goal, "goal"), (m.QuietHours, "quiet"), (m.TimeZone, "zone"), (m.FrequencyCap, "cap"))


def start_lines(journey: m.Journey) -> list[Line]:
    """Every setting in words, in the canonical order: who enters, who leaves, what success is."""
    return [Line(next(key for types, key in _SETTING_KINDS if isinstance(s, types)), sentences.setting(s),
                 format_setting(s)) for s in journey.settings()]


# --------------------------------------------------------------------------- parsing


def _parse_with_stand_ins(source: str) -> tuple[m.Journey | None, list[Problem], dict[int, str]]:
    """(model, syntax problems, {line: broken text}): the model is the text's own when it
    parses, else one with stand-ins for the broken lines, or None."""
    lines = source.replace("\r\n", "\n").split("\n")
    problems: list[Problem] = []
    broken: dict[int, str] = {}
    for _ in range(MAX_RECOVERIES):
        try:
            return parse("\n".join(lines)), problems, broken
        except JourneyError as error:
            first = error.diagnostics[0]
            if not broken:  # the first pass reports every error the parser found on its own
                problems = [_problem(d, syntax=True) for d in error.diagnostics]
            elif not any(p.line == first.line for p in problems):
                problems.append(_problem(first, syntax=True))
            if not _stand_in(lines, first.line, broken):
                return None, problems, broken
    return None, problems, broken


def _stand_in(lines: list[str], line: int, broken: dict[int, str]) -> bool:
    index = line - 1
    if not 0 <= index < len(lines) or line in broken or line == 1:
        return False
    text = lines[index]
    stripped = text.strip()
    if not stripped or stripped[0].isdigit() or stripped.startswith(("else", "elif", "received", "timeout")):
        return False
    pad = text[: len(text) - len(text.lstrip())]
    label = _LABEL.match(text)
    following = next((t for t in lines[index + 1:] if t.strip()), "")
    opens = stripped.endswith(":") or len(following) - len(following.lstrip()) > len(pad)
    first_step = next((i for i, t in enumerate(lines) if i > 0 and not t.strip()), len(lines))
    if index < first_step:  # a setting: a comment keeps the line numbers
        lines[index] = pad + "# " + stripped
    else:
        lines[index] = pad + (label.group(1) if label else "") + ("if true:" if opens else "pass")
    broken[line] = stripped
    return True


def _validation_problems(journey: m.Journey, source: str) -> list[Problem]:
    """What a publish would refuse (the same checks as `compile_source`, on the model already
    parsed: parsing again would double the time of every redraw)."""
    try:
        validate(journey, normalize(source))
    except JourneyInvalid as error:
        return [_problem(d, syntax=False) for d in error.diagnostics]
    return []


def _problem(d: Diagnostic, syntax: bool) -> Problem:
    return Problem(d.line, d.column, d.message, d.hint, syntax)


# --------------------------------------------------------------------------- layout


def _block(steps: edits.Steps, path: tuple[int, ...], ids: dict[int, str], broken: dict[int, str],
           lines: list[str], nodes_by_line: dict[int, Node]) -> Block:
    nodes = []
    for index, step in enumerate(steps):
        if step == edits.BARE_PASS and len(steps) == 1 and step.loc.line not in broken:
            break
        here = (*path, index)
        kind = BROKEN if step.loc.line in broken else kind_of(step)
        node = Node(encode(here), ids.get(id(step), "pass"), kind, _summary(step), step.loc.line,
                    sentences.step(step), broken.get(step.loc.line))
        nodes_by_line[step.loc.line] = node
        node.branches = [Branch(title, which, _block(block, (*here, which), ids, broken, lines, nodes_by_line),
                                control, label, dsl)
                         for which, (title, control, block, label, dsl) in enumerate(_branches(step))]
        node.removable_branches = isinstance(step, m.If | m.Split)
        node.can_add_branch = node.removable_branches
        nodes.append(node)
    return Block(encode(path), nodes)


_BranchParts = tuple[str, bool, edits.Steps, str | None, str]  # title, control, steps, label, DSL


def _branches(step: m.Step) -> list[_BranchParts]:
    """Each branch's title in words, and its header as the text writes it."""
    if isinstance(step, m.If):
        out: list[_BranchParts] = [
            (sentences.if_arm_title(arm.condition), False, arm.steps, None,
             ("if " if i == 0 else "elif ") + format_expr(arm.condition)) for i, arm in enumerate(step.arms)]
        if step.otherwise is not None:
            out.append((sentences.OTHERWISE, False, step.otherwise.steps, None, "else"))
        return out
    if isinstance(step, m.Split):
        return [(title, arm.control, arm.steps, arm.label,
                 f"{format_percent(arm.percent)}{' control' if arm.control else ''}")
                for title, arm in zip(sentences.split_arm_titles(step), step.arms, strict=True)]
    if isinstance(step, m.WaitForEvent):
        return [(title, False, branch.steps, None, name)
                for title, name, branch in ((sentences.RECEIVED, "received", step.received),
                                            (sentences.TIMED_OUT, "timeout", step.timeout)) if branch is not None]
    return []


def _summary(step: m.Step) -> str:
    if isinstance(step, m.Pass):
        return "does nothing"
    return step_header(step).removesuffix(":")


def _trigger_text(trigger: m.Trigger) -> str:
    return format_setting(trigger).removeprefix("trigger ")


def _spans(journey: m.Journey) -> list[tuple[int, int, int]]:
    """(first line, last line, depth) of every step, from its header to its last nested line."""
    out: list[tuple[int, int, int]] = []

    def last_line(step: m.Step) -> int:
        nested = [last_line(s) for block in m.child_blocks(step) for s in block]
        return max([step.loc.line, *nested])

    for path, step in edits.paths(journey):
        out.append((step.loc.line, last_line(step), len(path)))
    return out


def _owner(line: int, spans: list[tuple[int, int, int]], nodes_by_line: dict[int, Node]) -> Node | None:
    """The innermost drawn step whose lines hold `line`."""
    holding = [(depth, first) for first, last, depth in spans if first <= line <= last and first in nodes_by_line]
    if not holding:
        return None
    return nodes_by_line[max(holding)[1]]
