"""The review's facts from storage: the audience estimate, the pools' free codes, the templates
this installation knows. Blocking work, run on a worker thread (`svc.call`).

The estimate evaluates the journey's audience the way the engine does at entry: the profile
as the engine loads it (`engine.unit_of_work.Profile`), the condition compiled by
`engine.expressions`, and `count of ...` answered by the engine's own history port
(`UnitHistory`), over a read-only unit of work that is never flushed. With few profiles every
one is checked; with many, a random sample of SAMPLE_SIZE, drawn by random ids so that it
reads SAMPLE_SIZE rows rather than sorting the whole table.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.services import Services, services
from dsl import model as m
from engine.expressions import compile_predicate
from engine.scope import Scope
from engine.unit_of_work import UnitHistory, UnitOfWork, chunks
from storage import coupons
from storage.tables import profiles

from . import canvas as cv
from . import drafts, offloop, sentences
from . import review as rv
from .sessions import login_required
from .templating import render

SAMPLE_SIZE = 2_000  # profiles evaluated at most: enough for a share within about 2 points
DRAW_ROUNDS = 4  # rounds of random ids drawn to fill the sample (merged or deleted ids miss)


@dataclass(frozen=True)
class Stocked:
    """What storage says about the things a journey uses."""

    pools: dict[str, int]
    templates: frozenset[str] | None


def stocked(svc: Services) -> Stocked:
    with svc.db.connect() as conn:
        pools = {p.name: p.stock.available for p in coupons.all_pools(conn, svc.settings.clock.now())}
    return Stocked(pools, known_templates(svc))


def known_templates(svc: Services) -> frozenset[str] | None:
    """The templates a send can name: the action settings' and the catalog's, when either is
    configured; None when neither is, as nobody can say then which exist."""
    found: set[str] = set()
    known = False
    if svc.settings.actions is not None and svc.settings.actions.templates:
        found |= set(svc.settings.actions.templates)
        known = True
    catalog = svc.settings.catalog
    if catalog is not None and catalog.templates is not None:
        found |= set(catalog.templates)
        known = True
    return frozenset(found) if known else None


def estimate(db: Engine, now: datetime, audience: m.Audience | None, size: int = SAMPLE_SIZE,
             rng: random.Random | None = None) -> rv.Estimate:
    """How many profiles the audience lets in at `now`, out of all (merged-away profiles aside)."""
    with db.connect() as conn:
        population = int(conn.execute(select(func.count()).select_from(profiles)
                                      .where(profiles.c.merged_into.is_(None))).scalar_one())
        ids = _all_ids(conn) if population <= size else _sample_ids(conn, size, rng or random.Random())
        unit = UnitOfWork(conn, now)
        holds = compile_predicate(audience.condition if audience else None)
        matching = 0
        for part in chunks(ids):
            unit.load_users(part)
            matching += sum(1 for pid in part
                            if holds(Scope(dict(unit.profiles[pid].user), unit.now, history=UnitHistory(unit, pid))))
    return rv.Estimate(matching, len(ids), population)


def _all_ids(conn: Connection) -> list[int]:
    return [int(i) for i in conn.execute(select(profiles.c.id).where(profiles.c.merged_into.is_(None))
                                         .order_by(profiles.c.id)).scalars()]


def _sample_ids(conn: Connection, size: int, rng: random.Random) -> list[int]:
    """Up to `size` distinct live profile ids, drawn uniformly from the id range; each round
    asks for the ids still missing, so a range with gaps costs a few rounds, not a scan."""
    low, high = conn.execute(select(func.min(profiles.c.id), func.max(profiles.c.id))).one()
    span = range(int(low), int(high) + 1)
    found: set[int] = set()
    tried: set[int] = set()
    for _ in range(DRAW_ROUNDS):
        untried = len(span) - len(tried)
        wanted = min(untried, 2 * (size - len(found)))
        if wanted <= 0:
            break
        draw = _draw(span, tried, wanted, rng)
        tried |= draw
        for part in chunks(sorted(draw)):
            found |= {int(i) for i in conn.execute(select(profiles.c.id).where(
                profiles.c.id.in_(part), profiles.c.merged_into.is_(None))).scalars()}
        if len(found) >= size:
            break
    return sorted(found)[:size] if len(found) <= size else sorted(rng.sample(sorted(found), size))


def _draw(span: range, tried: set[int], wanted: int, rng: random.Random) -> set[int]:
    if 2 * wanted >= len(span) - len(tried):  # most of what is left: take it all, no guessing
        return set(rng.sample([i for i in span if i not in tried], wanted))
    draw: set[int] = set()
    while len(draw) < wanted:
        pick = rng.choice(span)
        if pick not in tried:
            draw.add(pick)
    return draw


# --------------------------------------------------------------------------- the review, put together


def review_of(canvas: cv.Canvas, stock: Stocked, estimate_found: rv.Estimate | None, zone: str) -> rv.Review | None:
    """The review of the canvas's text; None when the text does not read (only its problems
    can be shown then)."""
    if canvas.journey is None or not canvas.parses:
        return None
    validator = [rv.Problem(sentences.problem(p.message, p.hint, p.syntax, "step" if p.step_id else "setting"),
                            p.step_id) for p in canvas.problems]
    return rv.review(canvas.journey, validator, rv.Facts(stock.pools, stock.templates, estimate_found, zone))


@login_required
async def review_panel(request: Request) -> Response:
    """The publish review of the draft as it is now, with the text's fingerprint to publish."""
    svc = services(request)
    draft = await svc.call(drafts.load, svc, request.path_params["slug"])
    if draft is None:
        raise HTTPException(404, "no such journey")
    canvas = await offloop.canvas_of(request, draft.source)
    stock = await svc.call(stocked, svc)
    found = None
    if canvas.journey is not None and canvas.parses:
        found = await svc.call(estimate, svc.db, svc.settings.clock.now(), canvas.journey.audience)
    return render(request, "review.html", {"draft": draft, "canvas": canvas, "zone": svc.settings.default_zone,
                                           "review": review_of(canvas, stock, found, svc.settings.default_zone)})
