"""The simulation panel: test the draft before publishing it.

A marketer writes (or loads) a sample profile and a list of timed events, or picks a scenario
read off the journey, and runs the real engine's simulation (`journeyflow.simulate`) over the
draft text, the one the canvas shows. The answer is the path (numbered on the canvas by
`static/simulation.js`), and the messages as they would be sent. Scenarios are saved with the
journey and rerun whenever the text changes; an outcome that differs from the accepted one is
shown as a line diff until someone accepts it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.services import services
from dsl import JourneyError, compile_source

from . import canvas as cv
from . import offloop
from . import simulation_work as work
from . import split_choices as arms
from .editor import draft_of, fields
from .outcome import difference
from .params import whole
from .ready import Ready, ready_scenarios
from .sample import (
    MAX_EVENTS,
    MAX_HORIZON,
    InputProblems,
    SimulationInput,
    TimedEvent,
    format_events,
    profile_fields,
    write_time,
    zone_of,
)
from .sessions import login_required, session_of
from .templating import render

DEFAULT_PROFILE = {"user_id": "sample-user", "traits": "first_name = Lin\npush_token = tok-sample\n",
                   "tags": "member", "timezone": "", "identities": ""}
DEFAULT_START = time(10, 0)  # tomorrow at 10:00 in the journey's zone: a time people picture
MAX_NAME = 120  # characters in a scenario's name
MAX_SCENARIO_ID = 2**31 - 1  # the id column is an INTEGER: PostgreSQL refuses a larger number


def _ready(source: str) -> list[Ready]:
    try:
        return ready_scenarios(compile_source(source))
    except JourneyError:
        return []


def _events_text(ready: Ready) -> str:
    start = datetime(2000, 1, 1, tzinfo=UTC)  # offsets only: any start will do
    return format_events([TimedEvent(start + e.after, e.name, e.properties) for e in ready.events], start)


def _splits(source: str) -> list[arms.SplitChoice]:
    try:
        return arms.split_choices(compile_source(source))
    except JourneyError:
        return []


def _journey_zone(source: str) -> str | None:
    try:
        return compile_source(source).timezone
    except JourneyError:
        return None


def _form(request: Request, slug: str, source: str, values: dict[str, str], note: str | None = None,
          status_code: int = 200) -> Response:
    ready = _ready(source)
    splits = _splits(source)
    return render(request, "simulation_form.html", {
        "slug": slug, "values": {**values, **arms.chosen(values, splits)}, "ready": ready, "note": note,
        "splits": splits, "kinds": work.IDENTITY_KINDS,
        "max_events": MAX_EVENTS, "max_days": MAX_HORIZON.days, "zone": _journey_zone(source) or "UTC",
    }, status_code=status_code)


@login_required
async def form(request: Request) -> Response:
    """The panel's form, with a sample profile and the first ready scenario filled in."""
    draft = await draft_of(request)
    zone = zone_of(_journey_zone(draft.source))
    tomorrow = services(request).settings.clock.now().astimezone(zone).date() + timedelta(days=1)
    start = write_time(datetime.combine(tomorrow, DEFAULT_START, zone), zone)
    ready = _ready(draft.source)
    return _form(request, draft.slug, draft.source, {
        **DEFAULT_PROFILE, "start": start, "events": _events_text(ready[0]) if ready else "",
        "ready": ready[0].key if ready else ""})


@login_required
async def ready_events(request: Request) -> Response:
    """The events of a ready scenario, in place of the events field."""
    draft = await draft_of(request)
    key = request.query_params.get("ready", "")
    chosen = next((r for r in _ready(draft.source) if r.key == key), None)
    text = _events_text(chosen) if chosen else request.query_params.get("events", "")
    return render(request, "simulation_events.html", {"values": {"events": text}})


@login_required
async def ready_list(request: Request) -> Response:
    """The ready scenarios again, after the journey changed (they are read off its text)."""
    draft = await draft_of(request)
    return render(request, "simulation_ready.html", {
        "slug": draft.slug, "ready": _ready(draft.source), "values": {"ready": request.query_params.get("ready", "")}})


@login_required
async def arm_choices(request: Request) -> Response:
    """The splits' arm choices again, after the journey changed, keeping what was chosen."""
    draft = await draft_of(request)
    splits = _splits(draft.source)
    values = dict(request.query_params)
    return render(request, "simulation_arms.html", {"splits": splits, "values": arms.chosen(values, splits)})


@login_required
async def load_profile(request: Request) -> Response:
    """A real profile's traits, tags, zone and identities, in place of the sample's fields."""
    await draft_of(request)
    kind, value = request.query_params.get("kind", ""), request.query_params.get("value", "").strip()
    svc = services(request)
    found = await svc.call(work.find_profile, svc, kind, value) if kind in work.IDENTITY_KINDS and value else None
    if found is None:
        values = {name: request.query_params.get(name, "") for name in DEFAULT_PROFILE}
        return render(request, "simulation_profile.html", {
            "values": values, "loaded": None, "missing": f"No profile has {kind} {value!r}." if value else
            "Give an identity to look for."})
    return render(request, "simulation_profile.html", {
        "values": profile_fields(found), "loaded": f"{kind} {value}", "missing": None})


async def _result(request: Request, source: str, given: SimulationInput,
                  forced: dict[str, int] | None = None) -> dict[str, Any]:
    """The result partial's context: the outcome, or the problems that kept it from running."""
    built = await offloop.canvas_of(request, source)
    if not built.valid:
        count = len(built.problems)
        return {"refused": f"The journey text has {count} problem{'s' if count != 1 else ''}: fix "
                           f"{'them' if count != 1 else 'it'} (listed under the text) to simulate."}
    try:
        done = await services(request).call(work.run, source, given, forced)
    except InputProblems as problems:
        return {"problems": problems.problems}
    except JourneyError as error:
        return {"refused": f"The journey cannot be simulated: {error}"}
    return {"outcome": done.outcome, "zone": done.zone_name, "visits": done.outcome.visits}


@login_required
async def simulate(request: Request) -> Response:
    """Run the draft for the form's sample and events."""
    draft = await draft_of(request)
    form = fields(await request.form())
    forced = arms.forced_arms(form, _splits(draft.source))
    return render(request, "simulation_result.html", {"rev": cv.rev(draft.source),
                                                      **await _result(request, draft.source, SimulationInput.of(form),
                                                                      forced)})


# --------------------------------------------------------------------------- scenarios


def _scenario_id(request: Request) -> int:
    """The scenario named in the path; anything but an id in the column's range names none (0).
    (Starlette's `int` convertor would hand `int()` any run of digits, a ValueError in routing.)"""
    return whole(str(request.path_params["scenario_id"]), MAX_SCENARIO_ID) or 0


async def _scenario_list(request: Request, message: str | None = None, status_code: int = 200) -> Response:
    """Every saved scenario rerun on the draft, each compared with its accepted outcome."""
    draft = await draft_of(request)
    svc = services(request)
    saved = await svc.call(work.list_scenarios, svc, draft.slug)
    built = await offloop.canvas_of(request, draft.source)
    rows = []
    for scenario in saved:
        row: dict[str, Any] = {"scenario": scenario}
        if built.valid:
            try:
                done = await svc.call(work.run, draft.source, SimulationInput.of(scenario.input))
            except (InputProblems, JourneyError) as error:
                row["problems"] = str(error)
            else:
                accepted = (scenario.outcome or {}).get("lines")
                row["diff"] = difference(list(accepted or []), done.outcome.readable())
                row["unaccepted"] = accepted is None
        rows.append(row)
    return render(request, "scenario_list.html", {
        "slug": draft.slug, "rows": rows, "message": message, "runs": built.valid}, status_code=status_code)


@login_required
async def scenario_list(request: Request) -> Response:
    return await _scenario_list(request)


@login_required
async def save_scenario(request: Request) -> Response:
    """Keep the form's input under a name, with this run's outcome as the accepted one."""
    form = fields(await request.form())
    draft = await draft_of(request)
    name = " ".join(form.get("scenario_name", "").split())
    if not name or len(name) > MAX_NAME:
        return await _scenario_list(request, f"Give the scenario a name (up to {MAX_NAME} characters).", 400)
    given = SimulationInput.of(form)
    if not (await offloop.canvas_of(request, draft.source)).valid:
        return await _scenario_list(request, "Not saved: the journey text has problems to fix first.", 409)
    svc = services(request)
    try:
        done = await svc.call(work.run, draft.source, given)
    except (InputProblems, JourneyError) as error:
        return await _scenario_list(request, f"Not saved: {error}", 400)
    await svc.call(work.save_scenario, svc, draft.slug, name, given, done.outcome.readable(),
                   session_of(request).user.username)
    return await _scenario_list(request, f"Saved “{name}” with its outcome.")


@login_required
async def run_scenario(request: Request) -> Response:
    """Put a saved scenario into the form and run it."""
    draft = await draft_of(request)
    svc = services(request)
    scenario = await svc.call(work.get_scenario, svc, draft.slug, _scenario_id(request))
    if scenario is None:
        return await _scenario_list(request, "That scenario no longer exists.", 404)
    given = SimulationInput.of(scenario.input)
    splits = _splits(draft.source)
    values = {**given.fields, "scenario_name": scenario.name, "ready": "", **arms.chosen({}, splits)}
    return render(request, "simulation_loaded.html", {
        "slug": draft.slug, "values": values, "ready": _ready(draft.source), "splits": splits,
        "note": f"Scenario “{scenario.name}”.",
        "kinds": work.IDENTITY_KINDS, "max_events": MAX_EVENTS, "max_days": MAX_HORIZON.days,
        "zone": _journey_zone(draft.source) or "UTC", "rev": cv.rev(draft.source),
        **await _result(request, draft.source, given)})


@login_required
async def accept(request: Request) -> Response:
    """The draft's outcome becomes the scenario's accepted one: the change was intended."""
    draft = await draft_of(request)
    svc = services(request)
    scenario_id = _scenario_id(request)
    scenario = await svc.call(work.get_scenario, svc, draft.slug, scenario_id)
    if scenario is None:
        return await _scenario_list(request, "That scenario no longer exists.", 404)
    try:
        done = await svc.call(work.run, draft.source, SimulationInput.of(scenario.input))
    except (InputProblems, JourneyError) as error:
        return await _scenario_list(request, f"Not accepted: {error}", 400)
    await svc.call(work.accept_outcome, svc, draft.slug, scenario_id, done.outcome.readable())
    return await _scenario_list(request, f"Accepted the new outcome of “{scenario.name}”.")


@login_required
async def delete(request: Request) -> Response:
    draft = await draft_of(request)
    svc = services(request)
    await svc.call(work.delete_scenario, svc, draft.slug, _scenario_id(request))
    return await _scenario_list(request, "Scenario deleted.")


_JOURNEY = "/journeys/{slug}"
_SCENARIO = _JOURNEY + "/scenarios/{scenario_id}"
ROUTES: list[BaseRoute] = [  # relative to /builder
    Route(f"{_JOURNEY}/simulate", form, methods=["GET"]),
    Route(f"{_JOURNEY}/simulate", simulate, methods=["POST"]),
    Route(f"{_JOURNEY}/simulate/ready", ready_events, methods=["GET"]),
    Route(f"{_JOURNEY}/simulate/ready-list", ready_list, methods=["GET"]),
    Route(f"{_JOURNEY}/simulate/arms", arm_choices, methods=["GET"]),
    Route(f"{_JOURNEY}/simulate/profile", load_profile, methods=["GET"]),
    Route(f"{_JOURNEY}/scenarios", scenario_list, methods=["GET"]),
    Route(f"{_JOURNEY}/scenarios", save_scenario, methods=["POST"]),
    Route(f"{_SCENARIO}/run", run_scenario, methods=["POST"]),
    Route(f"{_SCENARIO}/accept", accept, methods=["POST"]),
    Route(f"{_SCENARIO}/delete", delete, methods=["POST"]),
]
