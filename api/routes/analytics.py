"""Journey analytics: per version and step, counts over time (entered, exited, completed,
converted, suppressed), how many wait at each step now, and per split arm the conversion rate
with its Wilson 95% interval. Admin. All of it from the step counters (`storage.analytics`),
never from `journey_runs`: it answers as fast with a million runs recorded as with ten."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage import analytics
from storage import journeys as stored
from storage.analytics import GRANULARITIES
from storage.counters import JOURNEY_LEVEL

from ..problems import BadRequest, NotFound
from ..services import Services, services
from ..stats import wilson_interval
from ._guard import admin, int_param, slug_of


def _splits(version: stored.Version, figures: list[analytics.ArmFigures]) -> list[dict[str, Any]]:
    """Each split of the graph with all its arms: runs that took the arm, and how many of those
    converted (any goal) after taking it."""
    out = []
    for split in version.splits:
        arms = []
        for arm, entered, won in analytics.arms_of(split, figures):
            low, high = wilson_interval(won, entered)
            arms.append({"arm": arm.id, "control": arm.control, "percent": arm.percent,
                         "entered": entered, "converted": won,
                         "conversion_rate": won / entered if entered else None, "ci95": [low, high]})
        out.append({"step": split.id, "name": split.name, "arms": arms})
    return out


def _analytics(svc: Services, slug: str, number: int | None, granularity: str) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            raise NotFound(f"no journey {slug!r}")
        if number is not None:
            version = stored.version(conn, journey.id, number)
        elif journey.live_version_id is not None:
            version = stored.by_id(conn, journey.live_version_id)
        else:
            version = None
        if version is None or version.is_draft:
            raise NotFound(f"journey {slug!r} has no published version {number or ''}".rstrip())
        figures = analytics.step_figures(conn, [version.id])
        series = analytics.step_series(conn, [version.id], granularity)
        arms = analytics.arm_figures(conn, version.id, version.split_ids)
    order = [JOURNEY_LEVEL, *[n["id"] for n in version.graph.get("nodes", [])]]
    order += sorted((set(series) | set(figures)) - set(order))
    steps = [{"step": step,
              "waiting": figures[step].waiting if step in figures else 0,
              "totals": _totals(series.get(step, {})),
              "series": [{"bucket": b.isoformat(), **m} for b, m in series.get(step, {}).items()]}
             for step in order]
    return {"slug": slug, "version": version.number, "granularity": granularity, "steps": steps,
            "splits": _splits(version, arms)}


def _totals(buckets: dict[datetime, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for metrics in buckets.values():
        for metric, n in metrics.items():
            totals[metric] = totals.get(metric, 0) + n
    return totals


async def journey_analytics(request: Request) -> Response:
    await admin(request)
    granularity = request.query_params.get("granularity", "hour")
    if granularity not in GRANULARITIES:
        raise BadRequest("granularity must be hour or day", {"granularity": "must be hour or day"})
    number = int_param(request, "version", required=False)
    svc = services(request)
    return JSONResponse(await svc.call(_analytics, svc, slug_of(request), number, granularity))


routes = [Route("/v1/journeys/{slug}/analytics", journey_analytics, methods=["GET"])]
