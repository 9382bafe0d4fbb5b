"""The report, the live counts and the versions over HTTP, against a real server whose engine
applies the events sent through the real API: the figures on the pages are the engine's own
counters, not rows written by the test."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest
from starlette.requests import Request

from api.settings import Settings
from builder_ui import report
from engine.clock import SystemClock
from storage import analytics, connect, keys
from tests.api.conftest import serving

from .conftest import Builder, Served, make_database

JOURNEY = """journey "Lens offer"
  trigger event "signup"
  goal "bought" on event "purchase" within 14d

  @welcome send sms "Welcome"
  @offer split "offer test":
    50% control:
      pass
    50%:
      @intro send push template "lens_intro"
  @rest wait 2d
"""
SECOND = JOURNEY.replace('@welcome send sms "Welcome"', '@welcome send sms "Welcome aboard"').replace(
    "  @rest wait 2d\n", "  @rest wait 3d\n  @bye add tag \"done\"\n")
SETTLE_SECONDS = 15.0  # how long the engine may take to apply a few events


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    """The builder's server with the engine running in it, so events sent to the API move runs."""
    yield from engine_server(tmp_path)


def engine_server(tmp_path: Path) -> Iterator[Served]:
    database_url = make_database(tmp_path / "builder.db")
    settings = Settings(database_url=database_url, run_engine=True, engine_idle_seconds=0.05, key_cache_seconds=0)
    with serving(settings) as url:
        yield Served(url, database_url)


def write_key(database_url: str) -> str:
    db = connect(database_url)
    try:
        with db.begin() as conn:
            return keys.create(conn, "write", "report test", SystemClock().now())[1]
    finally:
        db.dispose()


def publish(b: Builder, source: str, name: str = "Lens offer") -> str:
    response = b.client.post("/builder/journeys", data={"name": name, "csrf_token": b.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    csrf = b.csrf()
    assert b.htmx(f"/builder/journeys/{slug}/text", {"source": source}, csrf).status_code == 200
    assert b.htmx(f"/builder/journeys/{slug}/publish", {"rev": b.rev(slug)}, csrf).status_code == 200
    return slug


def send(url: str, key: str, events: list[tuple[str, str]]) -> None:
    batch = [{"type": "track", "userId": user, "event": name, "messageId": f"{user}-{name}-{time.time_ns()}"}
             for user, name in events]
    response = httpx.post(f"{url}/v1/batch", json={"batch": batch}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text


def eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not check():
        assert time.monotonic() < deadline, "the engine did not apply the events in time"
        time.sleep(0.1)


def figure(html: str, name: str) -> str:
    marker = f'data-figure="{name}">'
    start = html.index(marker) + len(marker)
    return html[start:html.index("<", start)]


def step_counts(b: Builder, slug: str) -> dict[str, tuple[str, str, str]]:
    """Step id -> (entered, waiting, left) as the canvas poll answers them."""
    answer = b.client.get(f"/builder/journeys/{slug}/counts", headers={"HX-Request": "true"}).text
    out = {}
    for part in answer.split("<hx-partial")[1:]:
        if "data-counts=" not in part:
            continue
        step = part.split('data-counts="', 1)[1].split('"', 1)[0]
        out[step] = (figure(part, "entered"), figure(part, "waiting"), figure(part, "left"))
    return out


def test_the_canvas_counts_and_the_report_follow_the_engine(signed_in: Builder, server: Served) -> None:
    slug = publish(signed_in, JOURNEY)
    key = write_key(server.database_url)
    users = [f"u{i}" for i in range(40)]
    send(server.url, key, [(u, "signup") for u in users])
    eventually(lambda: step_counts(signed_in, slug).get("rest", ("", "", ""))[1] == "40")
    counts = step_counts(signed_in, slug)
    assert counts["welcome"] == ("40", "0", "40")
    assert counts["rest"] == ("40", "40", "0")
    assert 0 < int(counts["intro"][0]) < 40  # the split sent some users each way
    send(server.url, key, [(u, "purchase") for u in users[:10]])
    eventually(lambda: 'id="total-converted">10<' in signed_in.client.get(f"/builder/journeys/{slug}/report").text)

    answer = signed_in.client.get(f"/builder/journeys/{slug}/report")
    assert answer.status_code == 200
    html = answer.text
    assert 'id="total-entered">40<' in html
    svgs = [ElementTree.fromstring("<svg" + s[:s.index("</svg>") + 6]) for s in html.split("<svg")[1:]]
    assert len(svgs) == 3  # over time, funnel, the split
    titles = [t.text or "" for svg in svgs for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("welcome: 40 entered, 100.0% of journey entries") for t in titles)
    assert any(t.startswith("control: ") and " converted, " in t for t in titles)  # the control arm, named so
    assert "b against control: not enough data yet (n &lt; 30 in" in html  # 40 users cannot fill two arms of 30

    page = signed_in.client.get(f"/builder/journeys/{slug}").text
    assert f'hx-get="/builder/journeys/{slug}/counts"' in page and 'data-counts="welcome"' in page

    listing = signed_in.client.get("/builder/", headers={"HX-Request": "true"}).text  # the journey list's rows
    row = listing.split(f'data-slug="{slug}"', 1)[1].split("</tr>", 1)[0]
    cells = [cell.split("<", 1)[0].rsplit(">", 1)[1] for cell in row.split('<td class="num"')[1:]]
    assert cells == ["40", "40", "25.0%"]  # in the journey now (the live gauge), entered, converted


def test_the_csv_holds_every_figure_of_the_page(signed_in: Builder, server: Served) -> None:
    slug = publish(signed_in, JOURNEY)
    send(server.url, write_key(server.database_url), [(f"c{i}", "signup") for i in range(5)])
    eventually(lambda: step_counts(signed_in, slug).get("rest", ("", "", ""))[1] == "5")
    response = signed_in.client.get(f"/builder/journeys/{slug}/report.csv?days=7&granularity=hour")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by = {(r["section"], r["step"], r["arm"], r["metric"]): r["value"] for r in rows}
    assert by[("total", "", "", "entered")] == "5"
    assert by[("step", "rest", "", "waiting")] == "5"
    assert by[("funnel", "welcome", "", "entered")] == "5"
    assert {r["arm"] for r in rows if r["section"] == "arm"} == {"control", "b"}
    hourly = [r for r in rows if r["section"] == "series" and r["metric"] == "entered"]
    assert len(hourly) == 7 * 24 and sum(int(r["value"]) for r in hourly) == 5


def test_versions_list_who_published_and_compare_two(signed_in: Builder, server: Served) -> None:
    slug = publish(signed_in, JOURNEY)
    send(server.url, write_key(server.database_url), [(f"v{i}", "signup") for i in range(3)])
    eventually(lambda: step_counts(signed_in, slug).get("rest", ("", "", ""))[1] == "3")
    csrf = signed_in.csrf()
    assert signed_in.htmx(f"/builder/journeys/{slug}/text", {"source": SECOND}, csrf).status_code == 200
    assert signed_in.htmx(f"/builder/journeys/{slug}/publish", {"rev": signed_in.rev(slug)}, csrf).status_code == 200

    listing = signed_in.client.get(f"/builder/journeys/{slug}/versions").text
    v1 = listing.split('data-version="1"', 1)[1].split("</tr>", 1)[0]
    assert "marketer" in v1 and "(builder)" in v1 and "<td class=\"num\" data-running>3</td>" in v1
    assert 'status-live">live' in listing.split('data-version="2"', 1)[1].split("</tr>", 1)[0]

    diff = signed_in.client.get(f"/builder/journeys/{slug}/versions/diff?a=1&b=2")
    assert diff.status_code == 200
    html = diff.text
    old = html.split('id="canvas-v1"', 1)[1].split('id="canvas-v2"', 1)[0]
    new = html.split('id="canvas-v2"', 1)[1]
    assert 'data-step-id="welcome" data-mark="changed"' in old and 'data-step-id="rest" data-mark="changed"' in old
    assert 'data-step-id="bye" data-mark="added"' in new and 'data-step-id="offer" data-mark' not in new
    assert "3 users still on it" in old
    assert 'data-mark="removed"><span class="sign" aria-label="removed">−</span><code>  @welcome send sms' in html
    assert signed_in.client.get(f"/builder/journeys/{slug}/versions/diff?a=1&b=9").status_code == 404
    assert signed_in.client.get(f"/builder/journeys/{slug}/versions/diff?a=x").status_code == 400


def test_a_journey_never_published_has_an_empty_report_and_no_counts(signed_in: Builder) -> None:
    response = signed_in.client.post("/builder/journeys", data={"name": "Quiet", "csrf_token": signed_in.csrf()})
    slug = str(response.headers["location"]).rsplit("/", 1)[-1]
    report = signed_in.client.get(f"/builder/journeys/{slug}/report").text
    assert "has not been published yet" in report and "No runs in this period yet." in report
    assert step_counts(signed_in, slug) == {}
    assert signed_in.client.get("/builder/journeys/nope/report").status_code == 404


def test_the_pages_need_a_session(builder: Builder) -> None:
    for path in ("report", "report.csv", "counts", "versions", "versions/diff?a=1&b=2"):
        assert builder.client.get(f"/builder/journeys/x/{path}").status_code == 303


def test_names_typed_by_users_are_escaped_in_the_report(signed_in: Builder, server: Served) -> None:
    source = JOURNEY.replace('"offer test"', '"<b>offer</b> & co"')
    slug = publish(signed_in, source, name="<i>x</i>")
    html = signed_in.client.get(f"/builder/journeys/{slug}/report").text
    assert "<b>offer</b>" not in html and "<i>x</i>" not in html
    assert "&lt;b&gt;offer&lt;/b&gt; &amp; co" in html


NOW = datetime(2026, 3, 10, 14, 25, tzinfo=UTC)


def test_the_range_is_every_bucket_up_to_now_with_zeros_where_nothing_was_counted() -> None:
    day = datetime(2026, 3, 8, tzinfo=UTC)
    series = [analytics.Point(day, 5, 1, 0, 0), analytics.Point(day - timedelta(days=40), 9, 0, 0, 0)]
    daily = report.filled(series, NOW, report.Choice(7, "day", None))
    assert [p.bucket.day for p in daily] == [4, 5, 6, 7, 8, 9, 10]
    assert [p.entered for p in daily] == [0, 0, 0, 0, 5, 0, 0]  # the point 40 days back is out of range
    hourly = report.filled([], NOW, report.Choice(7, "hour", None))
    assert len(hourly) == 7 * 24 and hourly[-1].bucket == datetime(2026, 3, 10, 14, tzinfo=UTC)


def test_the_chart_reads_the_counters_from_the_ranges_first_bucket() -> None:
    assert report.first_bucket(NOW, report.Choice(7, "day", None)) == datetime(2026, 3, 4, tzinfo=UTC)
    assert report.first_bucket(NOW, report.Choice(7, "hour", None)) == datetime(2026, 3, 3, 15, tzinfo=UTC)


@pytest.mark.parametrize(("query", "choice"), [
    ("", report.Choice(30, "day", None)),
    ("days=7&granularity=hour&version=2", report.Choice(7, "hour", 2)),
    ("days=365&granularity=minute&version=all", report.Choice(30, "day", None)),  # unknown values: the defaults
    ("days=-7&version=x", report.Choice(30, "day", None)),
])
def test_the_range_selector_is_read_safely(query: str, choice: report.Choice) -> None:
    request = Request({"type": "http", "query_string": query.encode(), "headers": []})
    assert report.choice_of(request) == choice


# What `int()` cannot read, reads wrongly, or reads as more than an INTEGER column holds.
HOSTILE_NUMBERS = ["9" * 5000, "99999999999999999999", "١٢", "²", " 7", "1_0", "-1", ""]


@pytest.mark.parametrize("raw", HOSTILE_NUMBERS)
def test_hostile_numbers_in_builder_urls_are_never_a_server_error(signed_in: Builder, raw: str) -> None:
    slug = publish(signed_in, JOURNEY)
    answers = {
        "report": signed_in.client.get(f"/builder/journeys/{slug}/report", params={"days": raw, "version": raw}),
        "csv": signed_in.client.get(f"/builder/journeys/{slug}/report.csv", params={"days": raw, "version": raw}),
        "diff": signed_in.client.get(f"/builder/journeys/{slug}/versions/diff", params={"a": raw, "b": "1"}),
        "scenario": signed_in.client.post(f"/builder/journeys/{slug}/scenarios/{raw or 0}/run",
                                          headers={"X-CSRF-Token": signed_in.csrf(), "HX-Request": "true"}),
    }
    assert {name: a.status_code for name, a in answers.items() if a.status_code >= 500} == {}
    assert answers["report"].status_code == 200  # read as no choice: the defaults
    assert answers["diff"].status_code == 400
