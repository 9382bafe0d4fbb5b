"""Journey management as blocking functions, run on worker threads by the HTTP API and the
builder alike: both create, draft, publish and change status through these, so a publish from
either takes the same lock, runs the same checks and numbers versions the same way.

Each function raises the API's problems (`NotFound`, `Conflict`, `Unprocessable`); the API
answers them as problem+json and the builder shows their detail.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from dsl import JourneyError, compile_source, parse
from dsl import model as dm
from engine.runtime import JourneyNotFound, slugify
from storage import journeys as stored

from .problems import Conflict, NotFound, Unprocessable
from .services import Services

# What each management action may start from, and the status it leads to.
TRANSITIONS = {
    "pause": ({"live"}, "paused"),
    "resume": ({"paused"}, "live"),
    "archive": ({"draft", "live", "paused"}, "archived"),
}

MAX_SLUG_LENGTH = 100  # as the API's slug pattern says


def analyse(source: str) -> tuple[dict[str, Any] | None, str | None, list[dict[str, Any]]]:
    """(compiled graph, journey name, problems): the graph is None when there are problems."""
    try:
        compiled = compile_source(source)
    except JourneyError as error:
        return None, _name(source), [{"line": d.line, "column": d.column, "message": d.message, "hint": d.hint}
                                     for d in error.diagnostics]
    return compiled.to_dict(), compiled.name, []


def _name(source: str) -> str | None:
    try:
        return parse(source).name
    except JourneyError:
        return None


def version_view(version: stored.Version, live_version_id: int | None) -> dict[str, Any]:
    graph, _, problems = analyse(version.source) if version.is_draft else (version.graph, None, [])
    return {"version": version.number, "id": version.id, "source": version.source, "graph": graph,
            "errors": problems, "valid": not problems, "draft": version.is_draft,
            "live": version.id == live_version_id, "created_at": version.created_at.isoformat(),
            "published_at": version.published_at.isoformat() if version.published_at else None,
            "published_by": version.published_by}


def journey_view(conn: Connection, journey: stored.Journey) -> dict[str, Any]:
    draft = stored.draft(conn, journey.id)
    live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
    shown = draft or live
    return {"slug": journey.slug, "name": journey.name, "status": journey.status,
            "live_version": live.number if live else None, "draft_version": draft.number if draft else None,
            "version": version_view(shown, journey.live_version_id) if shown else None}


def find(conn: Connection, slug: str) -> stored.Journey:
    journey = stored.get(conn, slug)
    if journey is None:
        raise NotFound(f"no journey {slug!r}")
    return journey


def list_all(svc: Services) -> list[dict[str, Any]]:
    with svc.db.connect() as conn:
        out = []
        for journey in stored.list_all(conn):
            draft = stored.draft(conn, journey.id)
            live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
            out.append({"slug": journey.slug, "name": journey.name, "status": journey.status,
                        "live_version": live.number if live else None,
                        "draft_version": draft.number if draft else None})
        return out


def create(svc: Services, source: str, slug: str | None) -> dict[str, Any]:
    graph, name, problems = analyse(source)
    if slug is None:
        if name is None:
            raise Unprocessable("the text does not parse, so it names no journey: give a slug", problems)
        slug = slugify(name)[:MAX_SLUG_LENGTH].rstrip("-")
    with svc.writing(), svc.db.begin() as conn:
        created = stored.create(conn, slug, name or slug, source, graph or {}, svc.settings.clock.now())
        if created is None:
            raise Conflict(f"a journey {slug!r} exists; edit its draft instead")
        return journey_view(conn, find(conn, slug))


def read(svc: Services, slug: str) -> dict[str, Any]:
    with svc.db.connect() as conn:
        return journey_view(conn, find(conn, slug))


def save_draft(svc: Services, slug: str, source: str) -> dict[str, Any]:
    graph, name, _ = analyse(source)
    with svc.writing(), svc.db.begin() as conn:
        journey = find(conn, slug)
        if journey.status == "archived":
            raise Conflict(f"journey {slug!r} is archived")
        version = stored.save_draft(conn, journey, source, graph or {}, name, svc.settings.clock.now())
        return version_view(version, journey.live_version_id)


def publish(svc: Services, slug: str, by: str | None = None, expected_source: str | None = None) -> dict[str, Any]:
    """Publish the draft as the live version; `by` names who did it ("user:<name>", "key:<name>").
    With `expected_source` (the text a person reviewed), a draft saved since is refused rather
    than published unseen: the text compared is the text published."""
    with svc.lock:  # one publisher at a time, and none while the engine loop holds the runtime
        with svc.db.connect() as conn:
            journey = find(conn, slug)
            draft = stored.draft(conn, journey.id)
        if draft is None:
            raise Conflict(f"journey {slug!r} has no draft to publish")
        if expected_source is not None and draft.source != expected_source:
            raise Conflict(f"the draft of {slug!r} changed since it was reviewed; review it again")
        _, _, problems = analyse(draft.source)
        if problems:
            raise Unprocessable("the draft has problems; fix them before publishing", problems)
        version_id = svc.runtime.publish(draft.source, slug, published_by=by)
        with svc.db.begin() as conn:
            stored.absorb_draft(conn, draft, version_id)
            return journey_view(conn, find(conn, slug))


def set_status(svc: Services, slug: str, action: str) -> dict[str, Any]:
    allowed, status = TRANSITIONS[action]
    with svc.lock:
        with svc.db.connect() as conn:
            journey = find(conn, slug)
        if journey.status not in allowed:
            raise Conflict(f"cannot {action} journey {slug!r}: it is {journey.status}")
        try:
            svc.runtime.set_status(slug, status)
        except JourneyNotFound:
            raise NotFound(f"no journey {slug!r}") from None
    return {"slug": slug, "status": status}


def versions(svc: Services, slug: str) -> list[dict[str, Any]]:
    with svc.db.connect() as conn:
        journey = find(conn, slug)
        return [{"version": v.number, "id": v.id, "draft": v.is_draft, "live": v.id == journey.live_version_id,
                 "created_at": v.created_at.isoformat(),
                 "published_at": v.published_at.isoformat() if v.published_at else None,
                 "published_by": v.published_by}
                for v in stored.versions(conn, journey.id)]


def version(svc: Services, slug: str, number: int) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = find(conn, slug)
        version = stored.version(conn, journey.id, number)
        if version is None:
            raise NotFound(f"journey {slug!r} has no version {number}")
        return version_view(version, journey.live_version_id)


def diff(svc: Services, slug: str, older: int, newer: int) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = find(conn, slug)
        found = {n: stored.version(conn, journey.id, n) for n in (older, newer)}
    missing = sorted(n for n, v in found.items() if v is None)
    if missing:
        raise NotFound(f"journey {slug!r} has no version {missing[0]}")
    a, b = found[older], found[newer]
    assert a is not None and b is not None
    return {"from": older, "to": newer, "diff": stored.diff(a, b, slug)}


def enter(svc: Services, slug: str, found: list[tuple[str, str]]) -> dict[str, Any]:
    with svc.db.connect() as conn:
        journey = find(conn, slug)
        live = stored.by_id(conn, journey.live_version_id) if journey.live_version_id else None
    if journey.status != "live" or live is None:
        raise Conflict(f"journey {slug!r} is {journey.status}; only live journeys take entries")
    if not any(isinstance(t, dm.ApiTrigger) for t in compile_source(live.source).triggers):
        raise Conflict(f"journey {slug!r} has no `trigger api`, so users cannot be entered through the API")
    with svc.lock:
        try:
            entered = svc.runtime.enter(slug, found)
        except JourneyNotFound:
            raise Conflict(f"journey {slug!r} is not live") from None
    return {"slug": slug, "entered": entered}
