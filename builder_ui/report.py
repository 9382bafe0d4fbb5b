"""A journey's report: entries, conversions and drop-off over time, the funnel along the main
path, and each split's arms with a verdict; the same figures as CSV.

Everything is read from the hourly `step_counters` (`storage.analytics`), never from the runs,
so the page costs the same with a million runs recorded as with ten (benchmarks/report.py).
The figures cover every published version unless one is chosen: step ids carry over from
version to version. Splits are read per version (an arm's share may change between
versions, so adding arms across versions would compare different experiments): the chosen
version's, else the live one's.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.services import Services, services
from storage import analytics
from storage import journeys as stored
from storage.counters import JOURNEY_LEVEL

from . import canvas as cv
from . import charts, live_counts, verdict, versions
from .params import whole
from .sessions import login_required
from .templating import render

RANGES = (7, 30, 90)  # days a report can look back over
DEFAULT_RANGE = 30
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Choice:
    """What the range selector asked for, checked."""

    days: int
    granularity: str
    version: int | None  # None: all published versions


@dataclass(frozen=True)
class Split:
    step: str
    name: str
    arms: list[verdict.Arm]
    comparisons: list[verdict.Comparison]


@dataclass(frozen=True)
class Figures:
    slug: str
    name: str
    choice: Choice
    published: list[int]
    split_version: int | None  # whose splits are shown
    now: datetime
    totals: analytics.Point
    in_journey: int
    series: list[analytics.Point]  # every bucket of the range, 0s included
    funnel: list[charts.Bar]
    splits: list[Split]
    goals: dict[str, int]
    steps: list[analytics.StepFigures]


# --------------------------------------------------------------------------- reading


def choice_of(request: Request) -> Choice:
    query = request.query_params
    days = whole(query.get("days"))
    granularity = query.get("granularity", "day")
    return Choice(days if days in RANGES else DEFAULT_RANGE,
                  granularity if granularity in analytics.GRANULARITIES else "day",
                  whole(query.get("version")))


def figures(svc: Services, slug: str, choice: Choice) -> Figures | None:
    now = svc.settings.clock.now()
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
        if journey is None:
            return None
        published = [v for v in stored.versions(conn, journey.id) if not v.is_draft]
        scoped = [v for v in published if choice.version is None or v.number == choice.version]
        ids = [v.id for v in scoped]
        shown = next((v for v in scoped if v.id == journey.live_version_id), scoped[-1] if scoped else None)
        steps = analytics.step_figures(conn, ids)
        series = analytics.journey_series(conn, ids, choice.granularity, since=first_bucket(now, choice))
        totals = analytics.journey_totals(conn, ids)
        running = analytics.live_runs(conn, ids)
        goals = analytics.goal_conversions(conn, ids)
        arms = analytics.arm_figures(conn, shown.id, shown.split_ids) if shown is not None else []
    return Figures(slug, journey.name, choice, [v.number for v in published], shown.number if shown else None, now,
                   totals, sum(running.values()), filled(series, now, choice), funnel(shown, steps, totals.entered),
                   splits(shown, arms), goals,
                   [f for step, f in steps.items() if step != JOURNEY_LEVEL])


def _last_bucket(now: datetime, choice: Choice) -> datetime:
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end.replace(hour=0) if choice.granularity == "day" else end


def first_bucket(now: datetime, choice: Choice) -> datetime:
    """Where the chosen range starts: the chart reads the counters from here on only."""
    return _last_bucket(now, choice) - timedelta(days=choice.days) + STEP[choice.granularity]


def filled(series: list[analytics.Point], now: datetime, choice: Choice) -> list[analytics.Point]:
    """The range's buckets in order, with the ones where nothing was counted as zeros."""
    step = STEP[choice.granularity]
    end, start = _last_bucket(now, choice), first_bucket(now, choice)
    found = {p.bucket: p for p in series}
    out, moment = [], start
    while moment <= end:
        out.append(found.get(moment) or analytics.Point(moment, 0, 0, 0, 0))
        moment += step
    return out


def funnel(version: stored.Version | None, steps: dict[str, analytics.StepFigures], entries: int) -> list[charts.Bar]:
    """The main path: the top-level steps of the version's text, in order."""
    if version is None:
        return []
    main = cv.build(version.source).main
    path = [node.step_id for node in (main.nodes if main is not None else [])]
    return [charts.Bar(step, steps[step].entered if step in steps else 0,
                       (steps[step].entered if step in steps else 0) / entries if entries else None) for step in path]


def splits(version: stored.Version | None, found: list[analytics.ArmFigures]) -> list[Split]:
    """Every split of the version with all its arms, those no run took yet as zeros."""
    if version is None:
        return []
    out = []
    for split in version.splits:
        arms = [verdict.Arm(arm.id.rsplit(".", 1)[-1], entered, converted, arm.control)
                for arm, entered, converted in analytics.arms_of(split, found)]
        out.append(Split(split.id, split.name, arms, verdict.compare_all(arms)))
    return out


# --------------------------------------------------------------------------- drawing


def pictures(f: Figures) -> dict[str, Markup]:
    series = [charts.Series("entered", [p.entered for p in f.series]),
              charts.Series("converted", [p.converted for p in f.series]),
              charts.Series("exited", [p.exited for p in f.series])]
    drawn = {"time": charts.time_chart([p.bucket for p in f.series], series, f.choice.granularity,
                                       title=f"Entries, conversions and exits per {f.choice.granularity} (UTC)"),
             "funnel": charts.funnel_chart(f.funnel, title="Users who entered each step of the main path")}
    for split in f.splits:
        whiskers = [charts.Whisker(a.name, a.entered, a.converted, *a.interval, control=a.control) for a in split.arms]
        drawn[f"split:{split.step}"] = charts.arms_chart(
            whiskers, title=f"Conversion per arm of {split.name}, with 95% intervals")
    return drawn


def csv_text(f: Figures) -> str:
    """Every figure of the page, one per row (section, bucket, step, arm, metric, value)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "bucket", "step", "arm", "metric", "value"])
    for name in ("entered", "converted", "exited", "completed"):
        writer.writerow(["total", "", "", "", name, getattr(f.totals, name)])
    writer.writerow(["total", "", "", "", "in_journey", f.in_journey])
    for goal, n in sorted(f.goals.items()):
        writer.writerow(["goal", "", "", "", goal, n])
    for p in f.series:
        for name in ("entered", "converted", "exited", "completed"):
            writer.writerow(["series", p.bucket.isoformat(), "", "", name, getattr(p, name)])
    for s in f.steps:
        for name in ("entered", "waiting", "left", "exited", "converted", "moved_on", "suppressed", "cancelled"):
            writer.writerow(["step", "", s.step, "", name, getattr(s, name)])
    for bar in f.funnel:
        writer.writerow(["funnel", "", bar.label, "", "entered", bar.value])
    for split in f.splits:
        for arm in split.arms:
            low, high = arm.interval
            for name, value in (("entered", arm.entered), ("converted", arm.converted),
                                ("rate", "" if arm.rate is None else f"{arm.rate:.6f}"),
                                ("ci95_low", f"{low:.6f}"), ("ci95_high", f"{high:.6f}"),
                                ("control", str(arm.control).lower())):
                writer.writerow(["arm", "", split.step, arm.name, name, value])
    return out.getvalue()


# --------------------------------------------------------------------------- views


async def _figures(request: Request) -> Figures:
    svc = services(request)
    found = await svc.call(figures, svc, request.path_params["slug"], choice_of(request))
    if found is None:
        raise HTTPException(404, "no such journey")
    return found


@login_required
async def page(request: Request) -> Response:
    found = await _figures(request)
    return render(request, "report.html", {"report": found, "pictures": pictures(found), "ranges": RANGES})


@login_required
async def download(request: Request) -> Response:
    found = await _figures(request)
    name = f"{found.slug}-report-{found.now:%Y%m%d}.csv"
    return Response(csv_text(found), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


_JOURNEY = "/journeys/{slug}"
ROUTES: list[BaseRoute] = [  # relative to /builder
    Route(f"{_JOURNEY}/report", page, methods=["GET"]),
    Route(f"{_JOURNEY}/report.csv", download, methods=["GET"]),
    Route(f"{_JOURNEY}/counts", live_counts.counts, methods=["GET"]),
    Route(f"{_JOURNEY}/versions", versions.page, methods=["GET"]),
    Route(f"{_JOURNEY}/versions/diff", versions.diff, methods=["GET"]),
]
