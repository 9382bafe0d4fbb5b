"""Journeys as people edit them: drafts, versions, and the difference between two versions.

`Runtime.publish` makes a version live; everything before that lives here. A draft is a
`journey_versions` row with `published_at` NULL, numbered after the newest version, and a new
journey starts as a `journeys` row with status `draft` and no live version. There is at most
one draft per journey: editing it rewrites that row, so the version numbers people see count
published versions plus the one being edited.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .tables import journey_versions, journeys


@dataclass(frozen=True)
class Journey:
    id: int
    slug: str
    name: str
    status: str
    live_version_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SplitArm:
    id: str  # "<split>.<arm>", as runs and counters name it
    control: bool
    percent: float | None


@dataclass(frozen=True)
class SplitStep:
    id: str
    name: str
    arms: list[SplitArm]


@dataclass(frozen=True)
class Version:
    id: int
    journey_id: int
    number: int
    source: str
    graph: dict[str, Any]
    created_at: datetime
    published_at: datetime | None
    published_by: str | None = None

    @property
    def is_draft(self) -> bool:
        return self.published_at is None

    @property
    def splits(self) -> list[SplitStep]:
        """Its split steps, in graph order, read off the compiled graph."""
        return [SplitStep(str(node["id"]), str(node.get("name") or node["id"]),
                          [SplitArm(str(arm["id"]), bool(arm.get("control")), arm.get("percent"))
                           for arm in node.get("arms", [])])
                for node in self.graph.get("nodes", []) if node.get("kind") == "split"]

    @property
    def split_ids(self) -> list[str]:
        """What analytics ask arm figures for."""
        return [split.id for split in self.splits]


def get(conn: Connection, slug: str) -> Journey | None:
    row = conn.execute(select(journeys).where(journeys.c.slug == slug)).one_or_none()
    return _journey(row) if row is not None else None


def list_all(conn: Connection) -> list[Journey]:
    return [_journey(r) for r in conn.execute(select(journeys).order_by(journeys.c.slug))]


def create(conn: Connection, slug: str, name: str, source: str, graph: dict[str, Any], now: datetime) -> Version | None:
    """A new journey in status `draft` with its first version as the draft; None if the slug is
    taken (checked by the unique index, so two creators racing cannot both win)."""
    try:
        with conn.begin_nested():
            journey_id = conn.execute(insert(journeys).values(
                slug=slug, name=name, status="draft", created_at=now, updated_at=now).returning(journeys.c.id)
            ).scalar_one()
    except IntegrityError:
        return None
    return _insert_version(conn, journey_id, 1, source, graph, now)


def draft(conn: Connection, journey_id: int) -> Version | None:
    """The journey's draft: its newest version, if that one is unpublished."""
    newest = _newest(conn, journey_id)
    return newest if newest is not None and newest.is_draft else None


def save_draft(conn: Connection, journey: Journey, source: str, graph: dict[str, Any], name: str | None,
               now: datetime) -> Version:
    """Write `source` as the journey's draft: rewrite the draft there is, or start one numbered
    after the newest version. A text that is the live version's again (an edit undone: a step
    inserted, then deleted) is no draft: the draft there was is dropped and the live version
    returned, so nothing reads as waiting to be published."""
    current = draft(conn, journey.id)
    if name is not None:
        conn.execute(update(journeys).where(journeys.c.id == journey.id).values(name=name, updated_at=now))
    live = by_id(conn, journey.live_version_id) if journey.live_version_id is not None else None
    if live is not None and live.source == source:
        if current is not None:
            conn.execute(delete(journey_versions).where(journey_versions.c.id == current.id))
        return live
    if current is None:
        newest = _newest(conn, journey.id)
        return _insert_version(conn, journey.id, (newest.number if newest else 0) + 1, source, graph, now)
    conn.execute(update(journey_versions).where(journey_versions.c.id == current.id).values(
        source=source, graph=graph, created_at=now))
    return Version(current.id, journey.id, current.number, source, graph, now, None)


def absorb_draft(conn: Connection, draft_version: Version, published_id: int) -> None:
    """After `Runtime.publish` made a new version from a draft's text, drop the draft and give
    the published version the draft's number, so publishing a draft reads as one step.

    `Runtime.publish` owns its own transaction, so this runs after it: a crash in between
    leaves the draft beside the identical published version, which is harmless.
    """
    published = conn.execute(select(journey_versions.c.version).where(
        journey_versions.c.id == published_id)).scalar_one()
    if published != draft_version.number + 1:
        return  # someone published or drafted in between: keep both as they are
    conn.execute(delete(journey_versions).where(
        journey_versions.c.id == draft_version.id, journey_versions.c.published_at.is_(None)))
    conn.execute(update(journey_versions).where(journey_versions.c.id == published_id).values(
        version=draft_version.number))


def versions(conn: Connection, journey_id: int) -> list[Version]:
    rows = conn.execute(select(journey_versions).where(journey_versions.c.journey_id == journey_id)
                        .order_by(journey_versions.c.version))
    return [_version(r) for r in rows]


def version(conn: Connection, journey_id: int, number: int) -> Version | None:
    row = conn.execute(select(journey_versions).where(
        journey_versions.c.journey_id == journey_id, journey_versions.c.version == number)).one_or_none()
    return _version(row) if row is not None else None


def by_id(conn: Connection, version_id: int) -> Version | None:
    row = conn.execute(select(journey_versions).where(journey_versions.c.id == version_id)).one_or_none()
    return _version(row) if row is not None else None


def diff(older: Version, newer: Version, slug: str) -> str:
    """A unified diff of two versions' texts, labelled `slug@vN`."""
    return "".join(difflib.unified_diff(
        older.source.splitlines(keepends=True), newer.source.splitlines(keepends=True),
        f"{slug}@v{older.number}", f"{slug}@v{newer.number}"))


def _newest(conn: Connection, journey_id: int) -> Version | None:
    row = conn.execute(select(journey_versions).where(journey_versions.c.journey_id == journey_id)
                       .order_by(journey_versions.c.version.desc()).limit(1)).one_or_none()
    return _version(row) if row is not None else None


def _insert_version(conn: Connection, journey_id: int, number: int, source: str, graph: dict[str, Any],
                    now: datetime) -> Version:
    version_id = conn.execute(insert(journey_versions).values(
        journey_id=journey_id, version=number, source=source, graph=graph, created_at=now, published_at=None,
    ).returning(journey_versions.c.id)).scalar_one()
    return Version(version_id, journey_id, number, source, graph, now, None)


def _journey(row: Row[Any]) -> Journey:
    return Journey(row.id, row.slug, row.name, row.status, row.live_version_id, row.created_at, row.updated_at)


def _version(row: Row[Any]) -> Version:
    return Version(row.id, row.journey_id, row.version, row.source, dict(row.graph or {}), row.created_at,
                   row.published_at, row.published_by)


__all__ = ["Journey", "SplitArm", "SplitStep", "Version", "absorb_draft", "by_id", "create", "diff", "draft", "get",
           "list_all", "save_draft", "version", "versions"]
