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

from starlette.requests import Request
from starlette.responses import Response

from actions.templates import TemplateFailed, render
from api.services import services
from dsl import model as m
from dsl import templates
from dsl.formatter import format_journey

from . import canvas as cv
from . import condition_rows as cr
from . import edits, forms, offloop, value_rows
from . import placeholders as ph
from .editor import draft_of, fields, save_and_redraw, workspace
from .sessions import login_required
from .state import builder_state
from .templating import render as render_template

SAMPLE_USER = {"first_name": "Lin", "phone": "+8613800000000", "tags": ["member"], "stage": "active",
               "total_spend": 480, "lens_orders": 0}
SAMPLE_EVENT = {"category": "care_solution", "amount": 129, "product_name": "Care solution 360 ml"}
SAMPLE_RESULT = {"code": "SAMPLE-7Q2K", "expires_at": "2026-12-31T23:59:59+08:00", "reused": False, "status": 200,
                 "body": None}


def _path(form: Mapping[str, str]) -> edits.StepPath:
    path = cv.decode(form.get("path", ""))
    if len(path) % 2 != 1:
        raise edits.EditError("which step?")
    return path


async def _context(request: Request) -> dict[str, Any]:
    """What the forms offer: seen events, the pools with their free codes (read fresh: the
    coupon step must not show a pool as empty after it was stocked), the installation's zone."""
    from . import pools  # the coupon pools page's own reading of the stock

    svc = services(request)
    return {"suggestions": await svc.call(builder_state(request).suggestions.get, svc),
            "pool_stock": await svc.call(pools.free_codes, svc), "default_zone": svc.settings.default_zone,
            "conditions": cr.Editors(await svc.call(builder_state(request).fields.get, svc))}


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
    return edited, [forms.FieldError("", forms.plain(p.message), forms.plain(p.hint) if p.hint else None)
                    for p in problems]


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


def preview(form: Mapping[str, str], where: ph.Available | None = None) -> dict[str, Any]:
    """The message rendered with the sample profile and event, or why it cannot be. Given what
    the step can use (`where`), only the results named before it are filled, and a name that
    is not gets the check's own problem: the preview never shows what a send would refuse."""
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
        if where is not None and (problems := ph.template_problems(text, _WHAT[part], where)):
            out["error"] = "; ".join(f"{message} — {hint}" if hint else message for message, hint in problems)
            continue
        try:
            checked = templates.check(text)  # read, never run: the same reading the check makes
        except RecursionError:
            out["error"] = "the template nests too deeply to be read"
            continue
        if checked.problems:
            out["error"] = "; ".join(f"{'the template is refused' if p.refused else 'template error'}: {p.message}"
                                     for p in checked.problems)
            continue
        names = set(checked.names - {"user", "event"})
        names &= where.results if where is not None else names
        try:
            out[part] = render(text, user, event, {name: SAMPLE_RESULT for name in names})
        except TemplateFailed as error:
            out["error"] = str(error)
    out["length"] = len(out.get("text", ""))
    if form.get("text"):
        out["chips"] = ph.chips(form.get("text", ""), where)
    return out


_WHAT = {"text": "message", "title": "title"}  # as the validator names them in its problems


async def _step_extras(request: Request, journey: m.Journey, step: m.Step) -> dict[str, Any]:
    """What the message, update and webhook forms offer at this step: the placeholders and
    results defined before it, the known fields and the known templates."""
    svc = services(request)
    known = await svc.call(builder_state(request).fields.get, svc)
    where = ph.available(journey, step, known)
    actions, catalog = svc.settings.actions, svc.settings.catalog
    return {"available": where, "choices": ph.value_choices(where, known),
            "template_texts": {n: t.text for n, t in actions.templates.items()} if actions else {},
            "template_names": sorted(catalog.templates or ()) if catalog else []}


def _message_view(values: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, Any]:
    """The step form's typed values, body rows and template choices, from its current fields."""
    if "available" not in context:
        return value_rows.view(values)
    options = ph.template_options(context["template_texts"], context["template_names"], values.get("template", ""))
    return {**value_rows.view(values), "template_options": options, "kind_labels": value_rows.KIND_LABELS}


def _step_panel(request: Request, draft: Any, canvas: cv.Canvas, path: edits.StepPath, values: Mapping[str, str],
                errors: list[forms.FieldError], context: dict[str, Any], status_code: int = 200) -> Response:
    assert canvas.journey is not None
    step = edits.step_at(canvas.journey, path)
    return render_template(request, "step_panel.html", {
        "draft": draft, "canvas": canvas, "path": cv.encode(path), "step": step, "node": _node_at(canvas, path),
        "values": values, "errors": errors, "preview": preview(values, context.get("available")), **context,
        **_message_view(values, context),
        "sample_user": values.get("sample_user") or json.dumps(SAMPLE_USER, ensure_ascii=False, indent=1),
        "sample_event": values.get("sample_event") or json.dumps(SAMPLE_EVENT, ensure_ascii=False, indent=1),
    }, status_code=status_code)


@login_required
async def step_panel(request: Request) -> Response:
    draft = await draft_of(request)
    canvas = await offloop.canvas_of(request, draft.source)
    query = dict(request.query_params)
    try:
        path = _path(query)
        if canvas.journey is None:
            raise edits.EditError("the text does not read: fix it in the DSL panel")
        step = edits.step_at(canvas.journey, path)
    except edits.EditError as error:
        return render_template(request, "panel_message.html", {"message": str(error)}, status_code=404)
    context = {**await _context(request), **await _step_extras(request, canvas.journey, step)}
    return _step_panel(request, draft, canvas, path, forms.step_fields(step), [], context)


@login_required
async def step_check(request: Request) -> Response:
    """Validate as the user types: problems and the preview, without saving."""
    form, collected = await _collected(request)  # typed values and body rows, as `value` and `body`
    form, collected = cr.collect(form, collected)  # condition rows, as the text of their field
    draft = await draft_of(request)
    canvas = await offloop.canvas_of(request, draft.source)
    where = None
    try:
        path = _path(form)
        if canvas.journey is None:
            raise edits.EditError("the text does not read: fix it in the DSL panel")
        _, errors = await services(request).call(check_step, canvas.journey, path, form)
        where = (await _step_extras(request, canvas.journey, edits.step_at(canvas.journey, path)))["available"]
        errors = collected or (errors + ph.message_problems(form, where))
    except edits.EditError as error:
        errors = [forms.FieldError("", str(error))]
    return render_template(request, "step_check.html", {"errors": errors,
                                                        "preview": await services(request).call(preview, form, where)})


async def _collected(request: Request) -> tuple[dict[str, str], list[forms.FieldError]]:
    """The form with its typed values and body rows folded into the fields `forms` reads,
    and what they could not say (shown instead of the parser's reading of it)."""
    posted = await request.form()
    return value_rows.collect((k, v) for k, v in posted.multi_items() if isinstance(v, str))


async def _editable(request: Request) -> tuple[dict[str, str], Any, cv.Canvas, Response | None]:
    """The submitted form, the draft and its canvas, and the 409 to answer instead when the
    form was made on another revision of the text or the text does not read."""
    form = fields(await request.form())
    draft = await draft_of(request)
    canvas = await offloop.canvas_of(request, draft.source)
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
    form, collected = await _collected(request)  # typed values and body rows, as `value` and `body`
    form, collected = cr.collect(form, collected)  # condition rows, as the text of their field
    try:
        path = _path(form)
        edited, errors = check_step(canvas.journey, path, form)
        step = edits.step_at(canvas.journey, path)
    except edits.EditError as error:
        return workspace(request, draft, canvas, status_code=400, message=str(error))
    if edited is None or collected:
        context = {**await _context(request), **await _step_extras(request, canvas.journey, step)}
        return _step_panel(request, draft, canvas, path, form, collected or errors, context, status_code=422)
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
    canvas = await offloop.canvas_of(request, draft.source)
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
    form, unfinished = cr.collect(form)  # condition rows, as the text of their field
    if unfinished:
        return _settings_panel(request, draft, form, unfinished, await _context(request), canvas, status_code=422)
    edited, errors = forms.settings_from_fields(canvas.journey, form)
    if edited is None:
        return _settings_panel(request, draft, form, errors, await _context(request), canvas, status_code=422)
    return await save_and_redraw(request, draft, format_journey(edited), message="Settings saved.")
