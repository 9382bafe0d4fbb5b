"""Every business case the examples' README lists, built in the builder by clicks only, at two
screen sizes, and published through the review.

The server knows what a real installation would: the examples' catalog (fields, templates,
pools), the actions settings with the templates' texts, and a stocked pool for every pool the
examples issue from. A marketer's hands (`journey_clicks`) build the journey from the example's
model; the journey the clicks made must compile to the same graph as the file (step ids,
settings, conditions, texts: everything but line numbers and comments), and publishing it
through the review must make it live.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actions.settings import load_settings
from api.settings import Settings
from dsl import compile_source, parse
from journeyflow.cli import load_catalog
from storage import connect, coupons
from tests.api.conftest import serving

from .conftest import Served, make_database, sign_in
from .journey_clicks import JourneyByClicks

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "journeys"
LISTED = re.compile(r"^\| `([a-z_]+\.journey)` \|", re.MULTILINE)
VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "desktop": {"width": 1920, "height": 1080}}
CODES_PER_POOL = 5


def listed_examples() -> list[str]:
    """The journeys the examples' README lists, in its order."""
    return LISTED.findall((EXAMPLES / "README.md").read_text(encoding="utf-8"))


def graph(source: str) -> dict[str, Any]:
    """The compiled graph without line numbers: what the engine runs."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "line"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    import json

    return strip(json.loads(compile_source(source).to_json()))  # type: ignore[no-any-return]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    """The builder with the examples' catalog and templates, and every pool they use stocked."""
    database_url = make_database(tmp_path / "builder.db")
    catalog = load_catalog(EXAMPLES / "catalog.toml")
    db = connect(database_url)
    now = datetime.now(UTC)
    with db.begin() as conn:
        for pool in sorted(catalog.coupon_pools or ()):
            coupons.create_pool(conn, pool, now)
            coupons.import_csv(conn, pool, [f"{pool}-{n}" for n in range(CODES_PER_POOL)])
    db.dispose()
    settings = Settings(database_url=database_url, catalog=catalog,
                        actions=load_settings(ROOT / "examples" / "actions.toml", {}))
    with serving(settings) as url:
        yield Served(url, database_url)


def test_the_readme_lists_every_example() -> None:
    assert sorted(listed_examples()) == sorted(p.name for p in EXAMPLES.glob("*.journey"))


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("example", listed_examples())
def test_a_seed_case_is_built_by_clicks_and_published(page: sync_api.Page, example: str, viewport: str,
                                                     artifacts: Path) -> None:
    expect = sync_api.expect
    page.set_viewport_size(VIEWPORTS[viewport])  # type: ignore[arg-type]
    source = (EXAMPLES / example).read_text(encoding="utf-8")
    journey = parse(source)
    sign_in(page)
    hands = JourneyByClicks(page, expect)
    hands.build(journey)

    built = page.locator("#dsl-text").input_value()
    assert graph(built) == graph(source), f"the clicks made:\n{built}"
    page.screenshot(path=artifacts / f"seed-{example.removesuffix('.journey')}-{viewport}.png", full_page=True)

    hands.publish()
    expect(page.locator("#status .badge")).to_have_text("live")
