"""The editor: the page, and every edit made on the canvas or in the DSL panel.

Each canvas edit names the text it was made on (`rev`); it is parsed, edited as a model
(`edits`), formatted, saved as the draft, and answered with the redrawn canvas, the new text
and the problems, as htmx partials. An edit made on an older text is refused with the current
one, so a stale page never edits the wrong step. Text typed in the DSL panel is saved as it is
(it is the source of truth, broken or not) and answered with the canvas only, so the cursor
stays where it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.services import Services, services
from dsl import model as m
from dsl.formatter import format_journey

from . import canvas as cv
from . import drafts, edits, offloop, palette
from .sessions import login_required, session_of
from .state import builder_state
from .templating import render

MAX_SOURCE_CHARS = 1_000_000  # the API's management body limit, in characters
CHANGED_ELSEWHERE = "The journey changed in another window: this is the latest version."
STATUS_ACTIONS = ("publish", "pause", "resume")
Change = Callable[[m.Journey, Mapping[str, str]], m.Journey]
Said = Callable[[m.Journey, Mapping[str, str]], str]  # a toast worked out from the journey before an edit


async def draft_of(request: Request) -> drafts.Draft:
    svc = services(request)
    found = await svc.call(drafts.load, svc, request.path_params["slug"])
    if found is None:
        raise HTTPException(404, "no such journey")
    return found


def fields(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def workspace(request: Request, draft: drafts.Draft, canvas: cv.Canvas, *, text: bool = True,
              message: str | None = None, panel: str | None = None, status_code: int = 200) -> Response:
    """The partials that redraw the editor after a change. `panel` is "clear" (empty the side
    panel) or "step:<path>" (open that step's form, as after an insert). A refusal (409) is
    marked on the answer, so the page's undo history knows the text it shows came from
    elsewhere rather than from an edit of its own."""
    return render(request, "workspace.html", {"draft": draft, "canvas": canvas, "with_text": text,
                                              "message": message, "panel": panel,
                                              "refused": status_code == 409}, status_code=status_code)


@login_required
async def page(request: Request) -> Response:
    draft = await draft_of(request)
    svc = services(request)
    suggestions = await svc.call(builder_state(request).suggestions.get, svc)
    return render(request, "editor.html", {"draft": draft, "canvas": await offloop.canvas_of(request, draft.source),
                                           "suggestions": suggestions, "message": None, "panel": None})


async def save_and_redraw(request: Request, draft: drafts.Draft, source: str, *, text: bool = True,
                          message: str | None = None, panel: str | None = None) -> Response:
    svc = services(request)
    try:
        await svc.call(drafts.save, svc, draft.slug, source)
    except drafts.Refused as refused:
        return workspace(request, draft, await offloop.canvas_of(request, draft.source), message=refused.detail,
                         status_code=409)
    saved = drafts.Draft(draft.slug, draft.name, draft.status, draft.live_version,
                         draft.draft_version or (draft.live_version or 0) + 1, source)
    return workspace(request, saved, await offloop.canvas_of(request, source), text=text, message=message,
                     panel=panel)


async def apply(request: Request, change: Change, message: str | Said | None = None,
                panel: Said | None = None) -> Response:
    """Apply a canvas edit to the current draft, unless the page was drawn from another text.
    `message` (and `panel`, see `workspace`) may be worked out from the journey before the
    edit: what "+ branch" took from which arm, or where an insert puts its step, is only known
    then."""
    form = fields(await request.form())
    draft = await draft_of(request)
    current = await offloop.canvas_of(request, draft.source)
    if form.get("rev") != current.rev:
        return workspace(request, draft, current, status_code=409, message=CHANGED_ELSEWHERE)
    if current.journey is None or not current.parses:
        problem = current.first_syntax_problem()
        where = f" on line {problem.line}" if problem else ""
        return workspace(request, draft, current, status_code=409,
                         message=f"Fix the text first: it does not read{where}.")
    try:
        edited = change(current.journey, form)
        said = message(current.journey, form) if callable(message) else message
        opened = panel(current.journey, form) if panel is not None else None
    except (edits.EditError, KeyError) as error:
        return workspace(request, draft, current, status_code=400, message=str(error).strip("'\""))
    return await save_and_redraw(request, draft, format_journey(edited), message=said, panel=opened)


def _int(form: Mapping[str, str], name: str) -> int:
    try:
        return int(form.get(name, ""))
    except ValueError:
        raise edits.EditError(f"{name} must be a number") from None


@login_required
async def insert(request: Request) -> Response:
    svc = services(request)
    suggestions = await svc.call(builder_state(request).suggestions.get, svc)
    event = next(iter(suggestions.events), "purchase")
    pool = suggestions.pools[0] if suggestions.pools else "COUPON_POOL"

    def change(journey: m.Journey, form: Mapping[str, str]) -> m.Journey:
        step = palette.new_step(form.get("kind", ""), journey, event, pool)
        return edits.insert_step(journey, cv.decode(form.get("block", "")), _int(form, "index"), step)

    def opened(journey: m.Journey, form: Mapping[str, str]) -> str:
        """The new step's form opens, so it can be filled in at once."""
        return "step:" + cv.encode(edits.inserted_at(journey, cv.decode(form.get("block", "")), _int(form, "index")))

    return await apply(request, change, panel=opened)


@login_required
async def move(request: Request) -> Response:
    return await apply(request, lambda j, f: edits.move_step(
        j, cv.decode(f.get("path", "")), cv.decode(f.get("block", "")), _int(f, "index")))


@login_required
async def shift(request: Request) -> Response:
    """Move a step one place up or down in its block (the keyboard's way to move)."""

    def change(journey: m.Journey, form: Mapping[str, str]) -> m.Journey:
        path = cv.decode(form.get("path", ""))
        if not path:
            raise edits.EditError("which step?")
        target = path[-1] + (2 if form.get("direction") == "down" else -1)
        if target < 0 or target > len(edits.block_at(journey, path[:-1])):
            return journey
        return edits.move_step(journey, path, path[:-1], target)

    return await apply(request, change)


@login_required
async def delete(request: Request) -> Response:
    return await apply(request, lambda j, f: edits.delete_step(j, cv.decode(f.get("path", ""))),
                       message="Step deleted.")


@login_required
async def add_branch(request: Request) -> Response:
    return await apply(request, lambda j, f: edits.add_branch(j, cv.decode(f.get("path", ""))),
                       message=lambda j, f: edits.branch_added(edits.step_at(j, cv.decode(f.get("path", "")))))


@login_required
async def remove_branch(request: Request) -> Response:
    return await apply(request, lambda j, f: edits.remove_branch(j, cv.decode(f.get("path", "")),
                                                                 _int(f, "branch")))


@login_required
async def restore(request: Request) -> Response:
    """Undo and redo: save a text this window had before (its history is kept in the page),
    if the draft is still the one the window shows; an undo must not wipe out what another
    window saved since."""
    form = fields(await request.form())
    draft = await draft_of(request)
    current = await offloop.canvas_of(request, draft.source)
    if form.get("rev") != current.rev:
        return workspace(request, draft, current, status_code=409, message=CHANGED_ELSEWHERE)
    source = form.get("source", "").replace("\r\n", "\n")
    if len(source) > MAX_SOURCE_CHARS:
        return workspace(request, draft, current, status_code=413,
                         message=f"The text is longer than {MAX_SOURCE_CHARS:,} characters.")
    said = "Redone." if form.get("direction") == "redo" else "Undone."
    return await save_and_redraw(request, draft, source, message=said, panel="clear")


@login_required
async def text(request: Request) -> Response:
    """The DSL panel: save what was typed, redraw the canvas from it."""
    form = fields(await request.form())
    source = form.get("source", "").replace("\r\n", "\n")
    draft = await draft_of(request)
    if len(source) > MAX_SOURCE_CHARS:
        return workspace(request, draft, await offloop.canvas_of(request, draft.source), text=False, status_code=413,
                         message=f"The text is longer than {MAX_SOURCE_CHARS:,} characters.")
    if source == draft.source:
        return workspace(request, draft, await offloop.canvas_of(request, source), text=False)
    return await save_and_redraw(request, draft, source, text=False)


@login_required
async def status(request: Request) -> Response:
    """Publish, pause or resume. A publish is of the text that was reviewed (its `rev`), and is
    refused with the review's problems (the validator's, a missing pool or template, no steps),
    whatever the page showed: the review's button is only a convenience."""
    from . import audience  # the review's storage reads

    action = request.url.path.rsplit("/", 1)[-1]
    draft = await draft_of(request)
    current = await offloop.canvas_of(request, draft.source)
    svc = services(request)
    if action == "publish":
        if fields(await request.form()).get("rev") != current.rev:
            return workspace(request, draft, current, status_code=409, panel="clear",
                             message="Not published: the journey changed since the review. Press Publish to "
                                     "review it again.")
        stock = await svc.call(audience.stocked, svc)
        found = audience.review_of(current, stock, None, svc.settings.default_zone)
        if found is None or found.blocked:
            count = len(found.problems) if found is not None else len(current.problems)
            return workspace(request, draft, current, status_code=422,
                             message=f"Not published: {count} problem{'s' if count != 1 else ''} to fix first, "
                                     "listed in the review.")
        call: Callable[[Services, str], None] = partial(drafts.publish, username=session_of(request).user.username,
                                                        reviewed=draft.source)
        done = "Published: the new version is live."
    else:
        call = partial(drafts.set_status, action=action)
        done = "Paused: nobody enters, waiting users are held." if action == "pause" else "Resumed."
    try:
        await svc.call(call, svc, draft.slug)
    except drafts.Refused as refused:
        return workspace(request, draft, current, status_code=409, message=refused.detail)
    draft = await draft_of(request)
    return workspace(request, draft, await offloop.canvas_of(request, draft.source), message=done,
                     panel="clear" if action == "publish" else None)
