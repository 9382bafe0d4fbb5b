"""Journey analytics: per version and step, counts over time (entered, exited, completed,
converted, suppressed, from `step_counters`), how many wait at each step now (from
`journey_runs`), and per split arm the conversion rate with its Wilson 95% interval. Admin."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.runtime import JOURNEY_LEVEL
from storage import journeys as stored
from storage.tables import conversions, journey_runs, step_counters

from ..problems import BadRequest, NotFound
from ..services import Services, services
from ..stats import wilson_interval
from ._guard import admin, int_param, slug_of

GRANULARITIES = ("hour", "day")
CONVERTED = "converted:"  # metric prefix, followed by the goal's name
ARM = "arm:"  # metric prefix, followed by the arm's id


def _bucket(moment: datetime, granularity: str) -> str:
    return (moment.replace(hour=0) if granularity == "day" else moment).isoformat()


def _series(conn: Connection, version_id: int, granularity: str) -> dict[str, dict[str, dict[str, int]]]:
    """step -> bucket -> metric -> count; every `converted:<goal>` also adds to `converted`."""
    out: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    rows = conn.execute(select(step_counters.c.step_id, step_counters.c.metric, step_counters.c.bucket,
                               step_counters.c.count).where(step_counters.c.version_id == version_id)
                        .order_by(step_counters.c.bucket))
    for step, metric, bucket, count in rows:
        if metric.startswith(ARM):
            continue
        cell = out[step][_bucket(bucket, granularity)]
        cell[metric] += count
        if metric.startswith(CONVERTED):
            cell["converted"] += count
    return out


def _waiting(conn: Connection, version_id: int) -> dict[str, int]:
    rows = conn.execute(select(journey_runs.c.step_id, func.count()).where(
        journey_runs.c.version_id == version_id, journey_runs.c.state == "waiting").group_by(journey_runs.c.step_id))
    return {str(step): int(n) for step, n in rows}


def _splits(conn: Connection, version: stored.Version) -> list[dict[str, Any]]:
    """Each split's arms: runs that took the arm, how many of those converted (any goal)."""
    splits = [n for n in version.graph.get("nodes", []) if n.get("kind") == "split"]
    if not splits:
        return []
    converted = set(conn.execute(select(conversions.c.run_id).distinct().join(
        journey_runs, journey_runs.c.id == conversions.c.run_id).where(journey_runs.c.version_id == version.id)
    ).scalars())
    taken: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for run_id, arms in conn.execute(select(journey_runs.c.id, journey_runs.c.split_arms).where(
            journey_runs.c.version_id == version.id)):
        for split_id, arm_id in (arms or {}).items():
            cell = taken[(split_id, arm_id)]
            cell[0] += 1
            cell[1] += run_id in converted
    out = []
    for node in splits:
        arms = []
        for arm in node.get("arms", []):
            entered, won = taken.get((node["id"], arm["id"]), [0, 0])
            low, high = wilson_interval(won, entered)
            arms.append({"arm": arm["id"], "control": bool(arm.get("control")), "percent": arm.get("percent"),
                         "entered": entered, "converted": won,
                         "conversion_rate": won / entered if entered else None, "ci95": [low, high]})
        out.append({"step": node["id"], "name": node.get("name"), "arms": arms})
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
        series, waiting = _series(conn, version.id, granularity), _waiting(conn, version.id)
        order = [JOURNEY_LEVEL, *[n["id"] for n in version.graph.get("nodes", [])]]
        order += sorted((set(series) | set(waiting)) - set(order))
        steps = [{"step": step,
                  "waiting": waiting.get(step, 0),
                  "totals": _totals(series.get(step, {})),
                  "series": [{"bucket": b, **dict(m)} for b, m in sorted(series.get(step, {}).items())]}
                 for step in order]
        return {"slug": slug, "version": version.number, "granularity": granularity, "steps": steps,
                "splits": _splits(conn, version)}


def _totals(buckets: dict[str, dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for metrics in buckets.values():
        for metric, n in metrics.items():
            totals[metric] += n
    return dict(totals)


async def journey_analytics(request: Request) -> Response:
    await admin(request)
    granularity = request.query_params.get("granularity", "hour")
    if granularity not in GRANULARITIES:
        raise BadRequest("granularity must be hour or day", {"granularity": "must be hour or day"})
    number = int_param(request, "version", required=False)
    svc = services(request)
    return JSONResponse(await svc.call(_analytics, svc, slug_of(request), number, granularity))


routes = [Route("/v1/journeys/{slug}/analytics", journey_analytics, methods=["GET"])]
