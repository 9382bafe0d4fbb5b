"""The numbers on the canvas: per step, how many entered, wait there now and left, polled by
the editor every few seconds (`editor_live.html`) and swapped into each step's slot.

The figures are summed over every published version of the journey. Users who entered an
older version run on with its steps, and a step keeps its id from version to version (the
builder writes labels), so the users waiting at a step are those of all versions together;
showing the live version's alone would hide them. Only the hourly counters are read
(`storage.analytics`), so a poll costs the same with ten runs recorded as with a million.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from api.services import Services, services
from storage import analytics
from storage import journeys as stored
from storage.counters import JOURNEY_LEVEL

from .sessions import login_required
from .templating import render


@dataclass(frozen=True)
class LiveCounts:
    slug: str
    live_version: int | None
    published: list[int]  # version numbers the figures are summed over
    steps: list[analytics.StepFigures]  # every step of a published version, 0s where nothing was counted
    in_journey: int
    entered: int

    @property
    def scope(self) -> str:
        if not self.published:
            return ""
        if len(self.published) == 1:
            return f"v{self.published[0]}"
        return f"v{self.published[0]}–v{self.published[-1]}"


def load(svc: Services, slug: str) -> LiveCounts | None:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            return None
        published = [v for v in stored.versions(conn, journey.id) if not v.is_draft]
        ids = [v.id for v in published]
        figures = analytics.step_figures(conn, ids)
        running = analytics.live_runs(conn, ids)
    live = next((v.number for v in published if v.id == journey.live_version_id), None)
    steps = dict.fromkeys(node["id"] for v in published for node in v.graph.get("nodes", []))
    steps.update(dict.fromkeys(figures))
    steps.pop(JOURNEY_LEVEL, None)
    journey_level = figures.get(JOURNEY_LEVEL, analytics.StepFigures(JOURNEY_LEVEL))
    return LiveCounts(slug, live, [v.number for v in published],
                      [figures.get(step, analytics.StepFigures(step)) for step in steps],
                      sum(running.values()), journey_level.entered)


@login_required
async def counts(request: Request) -> Response:
    svc = services(request)
    found = await svc.call(load, svc, request.path_params["slug"])
    if found is None:
        return Response(status_code=404)
    return render(request, "live_counts.html", {"live": found})
