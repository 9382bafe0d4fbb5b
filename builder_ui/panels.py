"""The side panels: a step's form and the journey's settings, checked as the user types.

Checking a form builds the step (or settings) it describes, puts it in the journey, and runs
the real validator over the result: problems come back on their fields, the same ones a
publish would report. A message's preview renders its template with a sample profile through
the engine's own sandboxed renderer (`actions.templates`), with placeholders for coupons and
webhook replies that a real run would fill.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jinja2
import jinja2.meta
from starlette.requests import Request
from starlette.responses import Response

from actions.templates import TemplateFailed, render
from api.services import services
from dsl import model as m
from dsl.formatter import format_journey

from . import canvas as cv
from . import edits, forms
from .editor import draft_of, fields, save_and_redraw, workspace
from .sessions import login_required
from .state import builder_state
from .templating import render as render_template

SAMPLE_USER = {"first_name": "Lin", "phone": "+8613800000000", "tags": ["member"], "stage": "active",
               "total_spend": 480, "lens_orders": 0}
SAMPLE_EVENT = {"category": "care_solution", "amount": 129, "product_name": "Care solution 360 ml"}
SAMPLE_RESULT = {"code": "SAMPLE-7Q2K", "expires_at": "2026-12-31T23:59:59+08:00", "reused": False, "status": 200,
                 "body": None}
_PARSE_ONLY = jinja2.Environment(autoescape=False)


def _path(form: Mapping[str, str]) -> edits.StepPath:
    path = cv.decode(form.get("path", ""))
    if len(path) % 2 != 1:
        raise edits.EditError("which step?")
    return path


async def _context(request: Request) -> dict[str, Any]:
    svc = services(request)
    return {"suggestions": await svc.call(builder_state(request).suggestions.get, svc)}


# --------------------------------------------------------------------------- steps


def check_step(journey: m.Journey, path: edits.StepPath, form: Mapping[str, str]
               ) -> tuple[m.Journey | None, list[forms.FieldError]]:
    """The journey with the form's step in place, and the problems of that step."""
    old = edits.step_at(journey, path)
    step, errors = forms.step_from_fields(old, form)
    if step is None:
        return None, errors
    edited = edits.replace_step(journey, path, step)
    redrawn = cv.build(format_journey(edited))
    node = _node_at(redrawn, path)
    problems = node.problems if node is not None else []
    return edited, [forms.FieldError("", p.message, p.hint) for p in problems]


def _node_at(canvas: cv.Canvas, path: edits.StepPath) -> cv.Node | None:
    if canvas.main is None:
        return None
    nodes, found = canvas.main.nodes, None
    wanted = cv.encode(path)
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node.path == wanted:
            found = node
        stack += [n for b in node.branches for n in b.block.nodes]
    return found


def preview(form: Mapping[str, str]) -> dict[str, Any]:
    """The message rendered with the sample profile and event, or why it cannot be."""
    if form.get("kind") not in ("sms", "push"):
        return {}
    if form.get("content") == "template":
        return {"note": f"Template {form.get('template', '')!r} is rendered from the catalog when sent."}
    try:
        user = json.loads(form["sample_user"]) if form.get("sample_user") else SAMPLE_USER
        event = json.loads(form["sample_event"]) if form.get("sample_event") else SAMPLE_EVENT
    except json.JSONDecodeError as error:
        return {"error": f"the sample is not JSON: {error.msg} (line {error.lineno})"}
    if not isinstance(user, dict) or not isinstance(event, dict):
        return {"error": "the sample profile and event are JSON objects: {...}"}
    out: dict[str, Any] = {}
    for part in ("title", "text"):
        text = form.get(part, "")
        if not text:
            continue
        try:
            names = jinja2.meta.find_undeclared_variables(_PARSE_ONLY.parse(text)) - {"user", "event"}
            out[part] = render(text, user, event, {name: SAMPLE_RESULT for name in names})
        except (TemplateFailed, jinja2.TemplateSyntaxError) as error:
            out["error"] = str(error)
    out["length"] = len(out.get("text", ""))
    return out


def _step_panel(request: Request, draft: Any, canvas: cv.Canvas, path: edits.StepPath, values: Mapping[str, str],
                errors: list[forms.FieldError], context: dict[str, Any], status_code: int = 200) -> Response:
    assert canvas.journey is not None
    step = edits.step_at(canvas.journey, path)
    return render_template(request, "step_panel.html", {
        "draft": draft, "canvas": canvas, "path": cv.encode(path), "step": step, "node": _node_at(canvas, path),
        "values": values, "errors": errors, "preview": preview(values), **context,
        "sample_user": values.get("sample_user") or json.dumps(SAMPLE_USER, ensure_ascii=False, indent=1),
        "sample_event": values.get("sample_event") or json.dumps(SAMPLE_EVENT, ensure_ascii=False, indent=1),
    }, status_code=status_code)


@login_required
async def step_panel(request: Request) -> Response:
    draft = await draft_of(request)
    canvas = cv.build(draft.source)
    query = dict(request.query_params)
    try:
        path = _path(query)
        if canvas.journey is None:
            raise edits.EditError("the text does not read: fix it in the DSL panel")
        step = edits.step_at(canvas.journey, path)
    except edits.EditError as error:
        return render_template(request, "panel_message.html", {"message": str(error)}, status_code=404)
    return _step_panel(request, draft, canvas, path, forms.step_fields(step), [], await _context(request))


@login_required
async def step_check(request: Request) -> Response:
    """Validate as the user types: problems and the preview, without saving."""
    form = fields(await request.form())
    draft = await draft_of(request)
    canvas = cv.build(draft.source)
    try:
        path = _path(form)
        if canvas.journey is None:
            raise edits.EditError("the text does not read: fix it in the DSL panel")
        _, errors = check_step(canvas.journey, path, form)
    except edits.EditError as error:
        errors = [forms.FieldError("", str(error))]
    return render_template(request, "step_check.html", {"errors": errors, "preview": preview(form)})


async def _editable(request: Request) -> tuple[dict[str, str], Any, cv.Canvas, Response | None]:
    """The submitted form, the draft and its canvas, and the 409 to answer instead when the
    form was made on another revision of the text or the text does not read."""
    form = fields(await request.form())
    draft = await draft_of(request)
    canvas = cv.build(draft.source)
    if form.get("rev") != canvas.rev or canvas.journey is None or not canvas.parses:
        return form, draft, canvas, workspace(request, draft, canvas, status_code=409,
                                              message="The journey changed, or its text does not read: "
                                                      "nothing was saved.")
    return form, draft, canvas, None


@login_required
async def step_apply(request: Request) -> Response:
    form, draft, canvas, stale = await _editable(request)
    if stale is not None:
        return stale
    assert canvas.journey is not None
    try:
        path = _path(form)
        edited, errors = check_step(canvas.journey, path, form)
    except edits.EditError as error:
        return workspace(request, draft, canvas, status_code=400, message=str(error))
    if edited is None:
        return _step_panel(request, draft, canvas, path, form, errors, await _context(request), status_code=422)
    response = await save_and_redraw(request, draft, format_journey(edited),
                                     message="Saved." if not errors else "Saved, with problems to fix.")
    return response


# --------------------------------------------------------------------------- settings


def _settings_panel(request: Request, draft: Any, values: Mapping[str, str], errors: list[forms.FieldError],
                    context: dict[str, Any], canvas: cv.Canvas, status_code: int = 200) -> Response:
    counts = {row: int(values.get(f"{row}_count", "1") or 1) for row in forms.ROWS}
    return render_template(request, "settings_panel.html", {
        "draft": draft, "values": values, "errors": errors, "counts": counts, "canvas": canvas, **context,
    }, status_code=status_code)


@login_required
async def settings_panel(request: Request) -> Response:
    draft = await draft_of(request)
    canvas = cv.build(draft.source)
    if canvas.journey is None or not canvas.parses:
        return render_template(request, "panel_message.html",
                               {"message": "The text does not read: fix it in the DSL panel first."})
    return _settings_panel(request, draft, forms.settings_fields(canvas.journey), [], await _context(request), canvas)


@login_required
async def settings_apply(request: Request) -> Response:
    form, draft, canvas, stale = await _editable(request)
    if stale is not None:
        return stale
    assert canvas.journey is not None
    edited, errors = forms.settings_from_fields(canvas.journey, form)
    if edited is None:
        return _settings_panel(request, draft, form, errors, await _context(request), canvas, status_code=422)
    return await save_and_redraw(request, draft, format_journey(edited), message="Settings saved.")
