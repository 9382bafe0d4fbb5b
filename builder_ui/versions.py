"""A journey's versions: who published each and when, how many users still run on it, and
two versions side by side (their texts line by line, their canvases with changed steps marked).

A step is matched across versions by its id, which is what keeps running users at it through
an edit (docs/dsl.md, "Stable step ids"); it is *changed* when its kind, its header or its
branches differ. Users on an old version go on with that version's steps, so the comparison
also says how many are still on each.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.services import Services, services
from storage import analytics
from storage import journeys as stored

from . import canvas as cv
from .params import whole
from .sessions import login_required
from .templating import render

ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@dataclass(frozen=True)
class Line:
    number: int | None  # None: a gap where the other side has lines
    text: str
    mark: str  # "", ADDED or REMOVED


@dataclass(frozen=True)
class Listed:
    number: int
    draft: bool
    live: bool
    created_at: str
    published_at: str | None
    published_by: str | None
    running: int


@dataclass(frozen=True)
class Side:
    number: int
    canvas: cv.Canvas
    marks: dict[str, str]  # step id -> ADDED, REMOVED or CHANGED
    running: int
    draft: bool


@dataclass(frozen=True)
class Listing:
    slug: str
    name: str
    versions: list[Listed]


@dataclass(frozen=True)
class Compared:
    slug: str
    name: str
    old: Side
    new: Side
    rows: list[tuple[Line, Line]]
    numbers: list[int]


# --------------------------------------------------------------------------- pure


def text_rows(old: str, new: str) -> list[tuple[Line, Line]]:
    """The two texts side by side: equal lines level, replaced ones paired, and a gap facing
    every added or removed line."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[tuple[Line, Line]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows += [(Line(i + 1, a[i], ""), Line(j + 1, b[j], "")) for i, j in zip(range(i1, i2), range(j1, j2),
                                                                                     strict=True)]
            continue
        left = [Line(i + 1, a[i], REMOVED) for i in range(i1, i2)]
        right = [Line(j + 1, b[j], ADDED) for j in range(j1, j2)]
        gap = Line(None, "", "")
        rows += [(left[k] if k < len(left) else gap, right[k] if k < len(right) else gap)
                 for k in range(max(len(left), len(right)))]
    return rows


def step_marks(old: cv.Canvas, new: cv.Canvas) -> tuple[dict[str, str], dict[str, str]]:
    """(marks on the old canvas, marks on the new): removed and changed steps on the old side,
    added and changed ones on the new."""
    before, after = signatures(old), signatures(new)
    changed = {step for step in before.keys() & after.keys() if before[step] != after[step]}
    old_marks = {step: REMOVED for step in before.keys() - after.keys()} | dict.fromkeys(changed, CHANGED)
    new_marks = {step: ADDED for step in after.keys() - before.keys()} | dict.fromkeys(changed, CHANGED)
    return old_marks, new_marks


def signatures(canvas: cv.Canvas) -> dict[str, tuple[str, ...]]:
    """Step id -> what a reader sees of the step itself: kind, header, branch titles (a
    changed share in a split changes the split, not the steps in its arms)."""
    return {node.step_id: (node.kind.key, node.broken or node.summary, *(b.title for b in node.branches))
            for node in nodes(canvas.main)}


def nodes(block: cv.Block | None) -> Iterator[cv.Node]:
    if block is None:
        return
    for node in block.nodes:
        yield node
        for branch in node.branches:
            yield from nodes(branch.block)


# --------------------------------------------------------------------------- database work


def listing(svc: Services, slug: str) -> Listing | None:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            return None
        found = stored.versions(conn, journey.id)
        running = analytics.live_runs(conn, [v.id for v in found if not v.is_draft])
    return Listing(slug, journey.name, [
        Listed(v.number, v.is_draft, v.id == journey.live_version_id, v.created_at.isoformat(timespec="seconds"),
               v.published_at.isoformat(timespec="seconds") if v.published_at else None, v.published_by,
               running.get(v.id, 0))
        for v in reversed(found)])


def compared(svc: Services, slug: str, old_number: int, new_number: int) -> Compared | None:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            return None
        found = {v.number: v for v in stored.versions(conn, journey.id)}
        old, new = found.get(old_number), found.get(new_number)
        if old is None or new is None:
            return None
        running = analytics.live_runs(conn, [v.id for v in (old, new) if not v.is_draft])
    old_canvas, new_canvas = cv.build(old.source), cv.build(new.source)
    old_marks, new_marks = step_marks(old_canvas, new_canvas)
    return Compared(slug, journey.name,
                    Side(old.number, old_canvas, old_marks, running.get(old.id, 0), old.is_draft),
                    Side(new.number, new_canvas, new_marks, running.get(new.id, 0), new.is_draft),
                    text_rows(old.source, new.source), sorted(found, reverse=True))


# --------------------------------------------------------------------------- views


@login_required
async def page(request: Request) -> Response:
    svc = services(request)
    found = await svc.call(listing, svc, request.path_params["slug"])
    if found is None:
        raise HTTPException(404, "no such journey")
    return render(request, "versions.html", {"listing": found})


@login_required
async def diff(request: Request) -> Response:
    slug = request.path_params["slug"]
    old, new = whole(request.query_params.get("a")), whole(request.query_params.get("b"))
    if old is None or new is None:
        raise HTTPException(400, "choose two versions: ?a=1&b=2")
    svc = services(request)
    found = await svc.call(compared, svc, slug, old, new)
    if found is None:
        raise HTTPException(404, "no such journey or version")
    return render(request, "versions_diff.html", {"compared": found})
