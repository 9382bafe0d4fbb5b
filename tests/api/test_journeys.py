"""Journey management, profiles and analytics over real HTTP, on both backends."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from engine.clock import SystemClock
from engine.runtime import Runtime
from storage.tables import journey_versions

from .conftest import Server

VIP = '''journey "VIP welcome"
  trigger api
  goal "bought" on event "purchase" within 7d

  @offer split "offer":
    50%:
      @hello send sms "hello {{ user.first_name | default('there') }}"
    50% control:
      pass
  @rest wait 1d
'''
BROKEN = '''journey "Broken"
  trigger api

  wait 2
'''


def admin(server: Server) -> httpx.Client:
    return server.client(server.admin)


def test_a_draft_is_created_edited_published_and_versioned(server: Server) -> None:
    with admin(server) as client:
        created = client.post("/v1/journeys", json={"source": BROKEN, "slug": "vip"})
        assert created.status_code == 201
        shown = created.json()
        assert (shown["status"], shown["live_version"], shown["draft_version"]) == ("draft", None, 1)
        (problem,) = shown["version"]["errors"]
        assert (problem["line"], problem["column"]) == (4, 8)
        assert shown["version"]["graph"] is None

        unpublishable = client.post("/v1/journeys/vip/publish")
        assert unpublishable.status_code == 422
        assert unpublishable.json()["diagnostics"][0]["line"] == 4

        edited = client.put("/v1/journeys/vip/draft", json={"source": VIP})
        assert (edited.status_code, edited.json()["version"], edited.json()["valid"]) == (200, 1, True)
        published = client.post("/v1/journeys/vip/publish").json()
        assert (published["status"], published["live_version"], published["draft_version"]) == ("live", 1, None)
        assert published["version"]["graph"]["start"] == "offer"
        assert client.post("/v1/journeys/vip/publish").status_code == 409  # nothing left to publish

        second = VIP.replace("wait 1d", "wait 2d")
        assert client.put("/v1/journeys/vip/draft", json={"source": second}).json()["version"] == 2
        reread = client.get("/v1/journeys/vip").json()
        assert (reread["live_version"], reread["draft_version"], reread["version"]["source"]) == (1, 2, second)
        assert client.post("/v1/journeys/vip/publish").json()["live_version"] == 2

        versions = client.get("/v1/journeys/vip/versions").json()["versions"]
        assert [(v["version"], v["draft"], v["live"]) for v in versions] == [(1, False, False), (2, False, True)]
        assert {v["published_by"] for v in versions} == {"key:test admin"}
        assert client.get("/v1/journeys/vip/versions/1").json()["source"] == VIP
        diff = client.get("/v1/journeys/vip/diff", params={"from": 1, "to": 2}).json()["diff"]
        assert "-  @rest wait 1d\n+  @rest wait 2d\n" in diff
        assert diff.startswith("--- vip@v1\n+++ vip@v2\n")
        assert client.get("/v1/journeys/vip/diff", params={"from": 1, "to": 9}).status_code == 404
        assert [j["slug"] for j in client.get("/v1/journeys").json()["journeys"]] == ["vip"]
    with server.db.connect() as conn:
        numbers = conn.execute(select(journey_versions.c.version).order_by(journey_versions.c.version)).scalars()
        assert list(numbers) == [1, 2]


def test_the_slug_comes_from_the_name_and_is_unique(server: Server) -> None:
    with admin(server) as client:
        assert client.post("/v1/journeys", json={"source": VIP}).json()["slug"] == "vip-welcome"
        again = client.post("/v1/journeys", json={"source": VIP})
        nameless = client.post("/v1/journeys", json={"source": "journey"})
        missing = client.post("/v1/journeys", json={"slug": "x"})
    assert (again.status_code, nameless.status_code, missing.status_code) == (409, 422, 400)
    assert missing.json()["errors"] == [{"field": "source", "detail": "must be a string"}]


def test_pause_resume_archive_follow_the_status(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP, "slug": "vip"})
        assert client.post("/v1/journeys/vip/pause").status_code == 409  # a draft is not running
        client.post("/v1/journeys/vip/publish")
        assert client.post("/v1/journeys/vip/resume").status_code == 409
        assert client.post("/v1/journeys/vip/pause").json() == {"slug": "vip", "status": "paused"}
        assert client.post("/v1/journeys/vip/entries", json={"userId": "u1"}).status_code == 409
        assert client.post("/v1/journeys/vip/resume").json()["status"] == "live"
        assert client.post("/v1/journeys/vip/archive").json()["status"] == "archived"
        assert client.put("/v1/journeys/vip/draft", json={"source": VIP}).status_code == 409
        assert client.get("/v1/journeys/nope").status_code == 404


def test_entering_users_shows_on_their_profile_and_in_analytics(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP, "slug": "vip"})
        client.post("/v1/journeys/vip/publish")
        users = [f"u{i}" for i in range(40)]
        entered = [client.post("/v1/journeys/vip/entries", json={"userId": u}).json()["entered"] for u in users]
        assert all(entered)
        assert client.post("/v1/journeys/vip/entries", json={"userId": "u0"}).json()["entered"] is False  # once

        (found,) = client.get("/v1/profiles", params={"kind": "user_id", "value": "u0"}).json()["profiles"]
        profile = client.get(f"/v1/profiles/{found['id']}").json()
        assert profile["identities"] == [{"kind": "user_id", "value": "u0"}]
        (run,) = profile["runs"]
        assert (run["journey"], run["version"], run["state"], run["step"]) == ("vip", 1, "waiting", "rest")
        assert all(d["channel"] == "sms" for d in profile["deliveries"])
        assert client.get("/v1/profiles", params={"kind": "user_id", "value": "nobody"}).json() == {"profiles": []}
        assert client.get("/v1/profiles/999999").status_code == 404

        analytics = client.get("/v1/journeys/vip/analytics", params={"granularity": "day"}).json()
        journey_level = analytics["steps"][0]
        assert (journey_level["step"], journey_level["totals"]["entered"]) == ("__journey__", 40)
        rest = next(s for s in analytics["steps"] if s["step"] == "rest")
        assert rest["waiting"] == 40
        (split,) = analytics["splits"]
        arms = {a["arm"]: a for a in split["arms"]}
        assert sum(a["entered"] for a in arms.values()) == 40
        assert all(a["converted"] == 0 and a["ci95"][0] == 0.0 for a in arms.values() if a["entered"])


def test_a_conversion_counts_for_its_arm(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP, "slug": "vip"})
        client.post("/v1/journeys/vip/publish")
        client.post("/v1/journeys/vip/entries", json={"userId": "buyer"})
    with server.client(server.write) as client:
        client.post("/v1/track", json={"userId": "buyer", "event": "purchase"})
    Runtime(server.db, SystemClock()).process_events()  # what the engine loop of `serve` does
    with admin(server) as client:
        analytics = client.get("/v1/journeys/vip/analytics").json()
    (arm,) = [a for a in analytics["splits"][0]["arms"] if a["entered"]]
    assert (arm["entered"], arm["converted"], arm["conversion_rate"]) == (1, 1, 1.0)
    assert analytics["steps"][0]["totals"]["converted"] == 1


def test_entering_needs_trigger_api(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP.replace("trigger api", 'trigger event "x"'), "slug": "ev"})
        client.post("/v1/journeys/ev/publish")
        refused = client.post("/v1/journeys/ev/entries", json={"userId": "u1"})
        nobody = client.post("/v1/journeys/ev/entries", json={})
    assert (refused.status_code, nobody.status_code) == (409, 400)


def test_a_method_a_path_does_not_take_is_405_listing_the_ones_it_does(server: Server) -> None:
    with admin(server) as client:
        options = client.options("/v1/journeys")
        delete = client.delete("/v1/journeys")
    assert (options.status_code, delete.status_code) == (405, 405)
    assert set(options.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert delete.headers["content-type"] == "application/problem+json"


def test_malformed_ids_and_slugs_are_400_naming_the_parameter(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP, "slug": "vip"})
        answers = {
            "number": client.get("/v1/journeys/vip/versions/" + "9" * 5000),
            "profile_id": client.get(f"/v1/profiles/{2**63}"),
            "slug": client.get("/v1/journeys/VIP%0A"),
            "from": client.get("/v1/journeys/vip/diff", params={"from": "١", "to": "1"}),
            "version": client.get("/v1/journeys/vip/analytics", params={"version": "1_0"}),
        }
        absent = client.get("/v1/journeys/vip/versions/2147483647"), client.get(f"/v1/profiles/{2**63 - 1}")
    for name, answer in answers.items():
        assert answer.status_code == 400, name
        assert [e["field"] for e in answer.json()["errors"]] == [name]
    assert [a.status_code for a in absent] == [404, 404]  # in range, and not there


def test_entering_refuses_identities_that_are_not_an_object_of_strings(server: Server) -> None:
    with admin(server) as client:
        client.post("/v1/journeys", json={"source": VIP, "slug": "vip"})
        client.post("/v1/journeys/vip/publish")
        refused = [client.post("/v1/journeys/vip/entries", json=body) for body in (
            {"userId": "u", "identities": []}, {"userId": "u", "identities": 0},
            {"identities": {"email": "x" * 256}}, {"userId": "x" * 256})]
        taken = client.post("/v1/journeys/vip/entries", json={"userId": "u", "identities": None})
    assert [r.status_code for r in refused] == [400, 400, 400, 400]
    assert [r.json()["errors"][0]["field"] for r in refused] == ["identities", "identities", "identities", "userId"]
    assert taken.json() == {"slug": "vip", "entered": True}


def test_a_draft_edited_back_to_the_live_text_is_no_draft(server: Server) -> None:
    """An edit undone (a step inserted, then deleted) leaves nothing to publish."""
    with admin(server) as client:
        assert client.post("/v1/journeys", json={"source": VIP, "slug": "vip"}).status_code == 201
        assert client.post("/v1/journeys/vip/publish").json()["live_version"] == 1
        changed = VIP.replace("wait 1d", "wait 2d")
        assert client.put("/v1/journeys/vip/draft", json={"source": changed}).json()["version"] == 2
        assert client.put("/v1/journeys/vip/draft", json={"source": VIP}).json()["version"] == 1  # the live one
        shown = client.get("/v1/journeys/vip").json()
        assert (shown["live_version"], shown["draft_version"]) == (1, None)
        assert client.post("/v1/journeys/vip/publish").status_code == 409  # nothing to publish
        assert [v["version"] for v in client.get("/v1/journeys/vip/versions").json()["versions"]] == [1]
        assert client.put("/v1/journeys/vip/draft", json={"source": changed}).json()["version"] == 2
