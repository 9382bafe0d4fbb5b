"""Saved simulation scenarios: a sample profile and a list of timed events kept with a
journey, rerun against every edit so a changed outcome shows up as a difference.

A scenario's `outcome` is the result a marketer last accepted; reruns are compared with it,
not with the previous run, so a change stays visible until someone says it is intended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    ForeignKey,
    Integer,
    Row,
    String,
    Table,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from .tables import metadata
from .types import UTCDateTime

journey_scenarios = Table(
    "journey_scenarios",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey_id", Integer, ForeignKey("journeys.id"), nullable=False),
    Column("name", String, nullable=False),
    Column("input", JSON, nullable=False),  # {"profile": {...}, "events": [...]}: what the simulation is fed
    Column("outcome", JSON, nullable=True),  # the accepted result that reruns are compared with
    Column("created_by", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("journey_id", "name"),
)


@dataclass(frozen=True)
class Scenario:
    id: int
    journey_id: int
    name: str
    input: dict[str, Any]
    outcome: dict[str, Any] | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


def list_for(conn: Connection, journey_id: int) -> list[Scenario]:
    """A journey's scenarios, by name."""
    rows = conn.execute(select(journey_scenarios).where(journey_scenarios.c.journey_id == journey_id)
                        .order_by(journey_scenarios.c.name))
    return [_scenario(r) for r in rows]


def get(conn: Connection, journey_id: int, scenario_id: int) -> Scenario | None:
    """One scenario of that journey (an id of another journey's scenario finds nothing)."""
    row = conn.execute(select(journey_scenarios).where(
        journey_scenarios.c.id == scenario_id, journey_scenarios.c.journey_id == journey_id)).one_or_none()
    return _scenario(row) if row is not None else None


def save(conn: Connection, journey_id: int, name: str, input: dict[str, Any], outcome: dict[str, Any] | None,
         created_by: str | None, now: datetime) -> Scenario:
    """Keep `input` under `name`, with `outcome` as the accepted one; a scenario of that name is
    overwritten (saving again under a name is how a marketer updates it). The unique index
    decides between two savers racing, so neither gets a duplicate."""
    try:
        with conn.begin_nested():
            conn.execute(insert(journey_scenarios).values(
                journey_id=journey_id, name=name, input=input, outcome=outcome, created_by=created_by,
                created_at=now, updated_at=now))
    except IntegrityError:
        conn.execute(update(journey_scenarios).where(
            journey_scenarios.c.journey_id == journey_id, journey_scenarios.c.name == name,
        ).values(input=input, outcome=outcome, updated_at=now))
    row = conn.execute(select(journey_scenarios).where(
        journey_scenarios.c.journey_id == journey_id, journey_scenarios.c.name == name)).one()
    return _scenario(row)


def accept(conn: Connection, journey_id: int, scenario_id: int, outcome: dict[str, Any], now: datetime) -> bool:
    """Make `outcome` the one reruns are compared with; False if there is no such scenario."""
    done = conn.execute(update(journey_scenarios).where(
        journey_scenarios.c.id == scenario_id, journey_scenarios.c.journey_id == journey_id,
    ).values(outcome=outcome, updated_at=now))
    return done.rowcount == 1


def delete_one(conn: Connection, journey_id: int, scenario_id: int) -> bool:
    done = conn.execute(delete(journey_scenarios).where(
        journey_scenarios.c.id == scenario_id, journey_scenarios.c.journey_id == journey_id))
    return done.rowcount == 1


def _scenario(row: Row[Any]) -> Scenario:
    return Scenario(row.id, row.journey_id, row.name, dict(row.input or {}),
                    dict(row.outcome) if row.outcome is not None else None, row.created_by, row.created_at,
                    row.updated_at)


__all__ = ["Scenario", "accept", "delete_one", "get", "journey_scenarios", "list_for", "save"]
