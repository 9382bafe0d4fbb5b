"""The simulation panel's blocking work, run on worker threads by the views: running the
real engine's simulation over a draft, reading a real profile as a sample, and keeping
scenarios.

A simulation never touches the installation's database: `journeyflow.simulate` runs the
engine on a throwaway in-memory one. Only the sample (a profile's traits, tags, zone and
identities, never its history) and the scenarios are read from, or written to, the real one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from api.services import Services
from dsl import compile_source
from dsl import graph as g
from dsl.durations import format_calendar_days, format_duration
from dsl.formatter import format_setting
from engine.identity import survivor_of
from journeyflow.simulate import IDENTITY_ORDER, SeedProfile, simulate
from storage import journeys as stored
from storage import scenarios
from storage.tables import identities, profiles

from .outcome import Outcome, read_outcome
from .sample import SimulationInput, messages_of

IDENTITY_KINDS = IDENTITY_ORDER  # what a real profile can be looked up by


@dataclass(frozen=True)
class Run:
    outcome: Outcome
    zone_name: str


def run(source: str, given: SimulationInput, forced_arms: Mapping[str, int] | None = None) -> Run:
    """Simulate the journey text for the input's profile and events, down the split arms
    `forced_arms` names (split id -> arm position; the others as assigned); raises
    `InputProblems` (the input) or `JourneyError` (the text)."""
    journey = compile_source(source)
    profile, events, zone = given.read(journey.timezone)
    lines = simulate([source], messages_of(events, profile.user_id), trace=True, seeds=[profile],
                     forced_arms=forced_arms)
    quiet = format_setting(journey.quiet_hours).removeprefix("quiet hours ") if journey.quiet_hours else None
    ours = [line for line in lines if line.get("user_id") == profile.user_id]
    titles = {node.id: step_title(node) for node in journey.nodes.values()}
    return Run(read_outcome(ours, zone, quiet, titles), str(getattr(zone, "key", "UTC")))


def step_title(node: g.Node) -> str:
    """What a step is, in a few words, for the path's lines."""
    match node:
        case g.WaitNode(seconds=seconds, calendar=True):
            return f"wait {format_calendar_days(seconds // 86_400)}"
        case g.WaitNode(seconds=seconds):
            return f"wait {format_duration(seconds)}"
        case g.WaitUntilNode(hour=hour, minute=minute):
            return f"wait until {hour:02d}:{minute:02d}"
        case g.WaitForEventNode(event=event):
            return f"wait for {event}"
        case g.BranchNode():
            return "condition"
        case g.SplitNode(name=name):
            return f"split {name}"
        case g.SendNode(channel=channel):
            return f"send {channel}"
        case g.CouponNode(pool=pool):
            return f"issue coupon {pool}"
        case g.WebhookNode():
            return "call webhook"
        case g.UpdateNode(field=path, op=op):
            return f"update user.{'.'.join(path)} {op}"
        case g.TagNode(action=action, tag=tag):
            return f"{action} tag {tag}"
    return "exit"


def find_profile(svc: Services, kind: str, value: str) -> SeedProfile | None:
    """The profile a real identity belongs to, as a sample: traits, tags, zone, identities."""
    with svc.db.connect() as conn:
        owner = conn.execute(select(identities.c.profile_id).where(and_(
            identities.c.kind == kind, identities.c.value == value))).scalar_one_or_none()
        if owner is None:
            return None
        profile_id = survivor_of(conn, owner)
        row = conn.execute(select(profiles.c.traits, profiles.c.tags, profiles.c.timezone)
                           .where(profiles.c.id == profile_id)).one()
        found = sorted((str(kind), str(value)) for kind, value in conn.execute(
            select(identities.c.kind, identities.c.value).where(identities.c.profile_id == profile_id)))
    user_id = next((v for k, v in found if k == "user_id"), value)
    others = tuple((k, v) for k, v in found if k != "user_id")
    traits: dict[str, Any] = dict(row.traits or {})
    return SeedProfile(user_id, traits, tuple(row.tags or ()), row.timezone, others)


def _journey_id(svc: Services, slug: str) -> int | None:
    with svc.db.connect() as conn:
        journey = stored.get(conn, slug)
    return journey.id if journey is not None else None


def list_scenarios(svc: Services, slug: str) -> list[scenarios.Scenario]:
    journey_id = _journey_id(svc, slug)
    if journey_id is None:
        return []
    with svc.db.connect() as conn:
        return scenarios.list_for(conn, journey_id)


def get_scenario(svc: Services, slug: str, scenario_id: int) -> scenarios.Scenario | None:
    journey_id = _journey_id(svc, slug)
    if journey_id is None:
        return None
    with svc.db.connect() as conn:
        return scenarios.get(conn, journey_id, scenario_id)


def save_scenario(svc: Services, slug: str, name: str, given: SimulationInput, readable: list[str],
                  username: str) -> None:
    journey_id = _journey_id(svc, slug)
    if journey_id is None:
        return
    with svc.writing(), svc.db.begin() as conn:
        scenarios.save(conn, journey_id, name, dict(given.fields), {"lines": readable}, f"user:{username}",
                       svc.settings.clock.now())


def accept_outcome(svc: Services, slug: str, scenario_id: int, readable: list[str]) -> bool:
    journey_id = _journey_id(svc, slug)
    if journey_id is None:
        return False
    with svc.writing(), svc.db.begin() as conn:
        return scenarios.accept(conn, journey_id, scenario_id, {"lines": readable}, svc.settings.clock.now())


def delete_scenario(svc: Services, slug: str, scenario_id: int) -> bool:
    journey_id = _journey_id(svc, slug)
    if journey_id is None:
        return False
    with svc.writing(), svc.db.begin() as conn:
        return scenarios.delete_one(conn, journey_id, scenario_id)
