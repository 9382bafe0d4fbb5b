"""Saved simulation scenarios: a sample profile and a list of timed events kept with a
journey, rerun against every edit so a changed outcome shows up as a difference.

A scenario's `outcome` is the result a marketer last accepted; reruns are compared with it,
not with the previous run, so a change stays visible until someone says it is intended.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, Table, UniqueConstraint

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
