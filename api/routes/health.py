"""Liveness, readiness and Prometheus metrics. Unauthenticated, as orchestrators and scrapers
call them; they reveal counts, never content. Put them behind the network's edge if counts are
sensitive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select, text
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from storage.tables import events, outbox, timers

from ..problems import Unavailable
from ..services import Services, services

if TYPE_CHECKING:
    from workers.health import QueueHealth

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def healthz(request: Request) -> Response:
    """The process answers."""
    return JSONResponse({"status": "ok"})


def _ping(svc: Services) -> None:
    with svc.db.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readyz(request: Request) -> Response:
    """The database answers, so events can be accepted."""
    svc = services(request)
    try:
        await svc.call(_ping, svc)
    except Exception as error:
        raise Unavailable(f"the database does not answer ({type(error).__name__})") from None
    body: dict[str, object] = {"status": "ready", "database": svc.db.dialect.name}
    if svc.settings.redis_url:  # workers do the engine's work: say how they are (events are accepted regardless)
        queue = await _queue_health(svc)
        body.update(redis="ok" if queue.reachable else "unreachable", workers=queue.workers, queue_jobs=queue.jobs)
    return JSONResponse(body)


async def _queue_health(svc: Services) -> QueueHealth:
    from workers.health import read

    assert svc.settings.redis_url is not None
    return await read(svc.settings.redis_url, svc.settings.queue)


def _gauges(svc: Services) -> dict[str, object]:
    now = svc.settings.clock.now()
    with svc.db.connect() as conn:
        pending = conn.execute(select(func.count(), func.min(events.c.received_at))
                               .where(events.c.processed_at.is_(None))).one()
        due = conn.execute(select(func.count()).select_from(timers).where(timers.c.due_at <= now)).scalar_one()
        deliveries: dict[str, int] = {str(status): int(n) for status, n in conn.execute(
            select(outbox.c.status, func.count()).group_by(outbox.c.status))}
    oldest = pending[1]
    return {"pending": int(pending[0]), "lag": (now - oldest).total_seconds() if oldest is not None else 0.0,
            "due": int(due), "deliveries": deliveries}


def exposition(accepted: int, groups: int, gauges: dict[str, object]) -> str:
    """Prometheus text format 0.0.4, written by hand: a handful of series needs no library."""
    lines = [
        "# HELP journeyflow_events_accepted_total Events stored by this process since it started (duplicates dropped).",
        "# TYPE journeyflow_events_accepted_total counter",
        f"journeyflow_events_accepted_total {accepted}",
        "# HELP journeyflow_ingest_commits_total Group-commit transactions of this process.",
        "# TYPE journeyflow_ingest_commits_total counter",
        f"journeyflow_ingest_commits_total {groups}",
        "# HELP journeyflow_events_pending Events accepted and not yet applied to journeys.",
        "# TYPE journeyflow_events_pending gauge",
        f"journeyflow_events_pending {gauges['pending']}",
        "# HELP journeyflow_processing_lag_seconds Age of the oldest event not yet applied (0 when none).",
        "# TYPE journeyflow_processing_lag_seconds gauge",
        f"journeyflow_processing_lag_seconds {gauges['lag']}",
        "# HELP journeyflow_timers_due Timers whose time has come and that have not fired yet.",
        "# TYPE journeyflow_timers_due gauge",
        f"journeyflow_timers_due {gauges['due']}",
        "# HELP journeyflow_deliveries Outbox rows by status.",
        "# TYPE journeyflow_deliveries gauge",
    ]
    deliveries = gauges["deliveries"]
    assert isinstance(deliveries, dict)
    lines += [f'journeyflow_deliveries{{status="{status}"}} {n}' for status, n in sorted(deliveries.items())]
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    svc = services(request)
    gauges = await svc.call(_gauges, svc)
    body = exposition(svc.queue.messages_accepted, svc.queue.groups_committed, gauges)
    if svc.settings.redis_url:
        from workers.health import exposition as queue_exposition

        body += "\n".join(queue_exposition(await _queue_health(svc))) + "\n"
    return PlainTextResponse(body, media_type=PROMETHEUS_TYPE)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
