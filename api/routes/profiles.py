"""Profiles as support staff and scripts look at them: traits, identities, tags, where the
person stands in each journey, and what was sent (or held back) to them. Admin keys only.

A profile merged into another (One-ID) is shown as the survivor it was merged into, since that
is where its identities, runs and deliveries went.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.identity import survivor_of
from storage.tables import identities, journey_runs, journey_versions, journeys, outbox, profiles

from ..problems import BadRequest, NotFound
from ..services import Services, services
from ._guard import MAX_BIG_ID, admin, path_id

DELIVERIES_SHOWN = 100  # the newest outbox rows of a profile, newest first


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _summary(conn: Connection, profile_id: int) -> dict[str, Any]:
    row = conn.execute(select(profiles).where(profiles.c.id == profile_id)).one()
    found = conn.execute(select(identities.c.kind, identities.c.value).where(identities.c.profile_id == profile_id)
                         .order_by(identities.c.kind, identities.c.value)).all()
    return {"id": row.id, "traits": dict(row.traits or {}), "tags": list(row.tags or []), "timezone": row.timezone,
            "identities": [{"kind": k, "value": v} for k, v in found],
            "created_at": _iso(row.created_at), "updated_at": _iso(row.updated_at)}


def _runs(conn: Connection, profile_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(journey_runs, journeys.c.slug, journey_versions.c.version.label("version_number"))
        .join(journeys, journeys.c.id == journey_runs.c.journey_id)
        .join(journey_versions, journey_versions.c.id == journey_runs.c.version_id)
        .where(journey_runs.c.profile_id == profile_id).order_by(journey_runs.c.entered_at.desc()))
    return [{"id": r.id, "journey": r.slug, "version": r.version_number, "state": r.state, "step": r.step_id,
             "entered_at": _iso(r.entered_at), "updated_at": _iso(r.updated_at), "wake_at": _iso(r.wake_at),
             "split_arms": dict(r.split_arms or {})} for r in rows]


def _deliveries(conn: Connection, profile_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(outbox.c.id, outbox.c.channel, outbox.c.status, outbox.c.step_id, outbox.c.send_at,
               outbox.c.created_at, outbox.c.payload, outbox.c.last_error, journeys.c.slug)
        .outerjoin(journeys, journeys.c.id == outbox.c.journey_id)
        .where(outbox.c.profile_id == profile_id).order_by(outbox.c.id.desc()).limit(DELIVERIES_SHOWN))
    return [{"id": r.id, "journey": r.slug, "step": r.step_id, "channel": r.channel, "status": r.status,
             "send_at": _iso(r.send_at), "created_at": _iso(r.created_at), "payload": dict(r.payload or {}),
             "reason": r.last_error} for r in rows]


def _read(svc: Services, profile_id: int) -> dict[str, Any]:
    with svc.db.connect() as conn:
        exists = conn.execute(select(profiles.c.id).where(profiles.c.id == profile_id)).first()
        if exists is None:
            raise NotFound(f"no profile {profile_id}")
        survivor = survivor_of(conn, profile_id)
        return {**_summary(conn, survivor), "merged_from": profile_id if survivor != profile_id else None,
                "runs": _runs(conn, survivor), "deliveries": _deliveries(conn, survivor)}


def _search(svc: Services, kind: str, value: str) -> list[dict[str, Any]]:
    with svc.db.connect() as conn:
        owner = conn.execute(select(identities.c.profile_id).where(
            identities.c.kind == kind, identities.c.value == value)).scalar_one_or_none()
        return [_summary(conn, survivor_of(conn, owner))] if owner is not None else []


async def read_profile(request: Request) -> Response:
    await admin(request)
    profile_id = path_id(request, "profile_id", MAX_BIG_ID)
    svc = services(request)
    return JSONResponse(await svc.call(_read, svc, profile_id))


async def search_profiles(request: Request) -> Response:
    """`?kind=email&value=a@example.com`: the profile that holds that identity, if any."""
    await admin(request)
    kind, value = request.query_params.get("kind"), request.query_params.get("value")
    problems = {name: "is required" for name, given in (("kind", kind), ("value", value)) if not given}
    problems |= {name: "must not contain NUL characters" for name, given in (("kind", kind), ("value", value))
                 if given and "\x00" in given}
    if problems:
        raise BadRequest("search by identity: give kind and value", problems)
    assert kind is not None and value is not None
    svc = services(request)
    return JSONResponse({"profiles": await svc.call(_search, svc, kind, value)})


routes = [
    Route("/v1/profiles", search_profiles, methods=["GET"]),
    Route("/v1/profiles/{profile_id}", read_profile, methods=["GET"]),
]
