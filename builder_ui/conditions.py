"""The condition editor's one route: redraw an editor after a click (a row or a group added or
removed, a field changed, text mode on or off), from the form as it stands.

Nothing is saved here: the panel's own check and Apply do that, reading the editor's rows
through `condition_rows.collect`. Which event's properties a row may name comes from the
form too (the field named by the editor's `~event_field`, else its fixed `~event`), so a
trigger's editor follows the event typed beside it.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from api.services import services
from dsl.numerals import ascii_digits

from . import condition_rows as rows
from .editor import fields as form_fields
from .field_catalog import Fields
from .sessions import login_required
from .state import builder_state
from .templating import render

NAME, ACTION = "cond_name", "cond_action"
TEMPLATE = "condition_editor.html"


def event_of(form: Mapping[str, str], name: str) -> str:
    """The event whose properties editor `name`'s rows may name ("" when none)."""
    chosen = form.get(f"{name}{rows.SEP}event_field", "")
    if chosen:
        return form.get(chosen, "").strip()
    return form.get(f"{name}{rows.SEP}event", "").strip()


def redrawn(form: Mapping[str, str], name: str, action: str, fields: Fields) -> rows.EditorView:
    """The editor after `action`: "text" (to text mode, with the rows' text), "rows" (back to
    rows, unless the text cannot be shown as rows), anything else changes the rows."""
    event = event_of(form, name) or None
    drawn = _drawn(form, name) + 1
    if action == "text":
        return rows.editor_view(name, rows.from_form(form, name), fields, event, as_text=True, drawn=drawn)
    if not rows.in_rows_mode(form, name):  # text stays text until asked for rows
        return rows.editor_view(name, form.get(name, ""), fields, event, as_text=action != "rows", drawn=drawn)
    group = rows.apply_action(rows.group_from_form(form, name), action)
    return rows.editor_view(name, "", fields, event, group=group, drawn=drawn)


def _drawn(form: Mapping[str, str], name: str) -> int:
    raw = form.get(f"{name}{rows.SEP}drawn", "0")
    return int(raw) if ascii_digits(raw) and len(raw) < 9 else 0


@login_required
async def condition(request: Request) -> Response:
    form = form_fields(await request.form())
    name = form.get(NAME, "")
    if not name:
        return Response("which condition?", status_code=400)
    svc = services(request)
    fields = await svc.call(builder_state(request).fields.get, svc)
    view = redrawn(form, name, form.get(ACTION, ""), fields)
    return render(request, TEMPLATE, {
        "standalone": True, "view": view, "errors": [], "label": form.get(f"{name}{rows.SEP}label", ""),
        "base": f"/builder/journeys/{request.path_params['slug']}",
        "event_field": form.get(f"{name}{rows.SEP}event_field", ""),
    })
