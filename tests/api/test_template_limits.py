"""A hostile message template through the HTTP API, on both backends: the journey check refuses
it by reading it, names the bound it breaks, and publishing it answers 422.

Nothing here times the server: that the check never computes `9 ** 12000000` is shown by its
answer naming the bound (the bounded operators refuse before computing), which is deterministic;
computing it would have held the server's GIL for about twenty seconds, then answered 500.
"""

from __future__ import annotations

import httpx

from .conftest import Server

HOSTILE = '''journey "Power"
  trigger api

  @boom send sms "hi {{ 9 ** 12000000 }}"
'''
UNSAFE = '''journey "Globals"
  trigger api

  @leak send sms "hi {{ cycler.__init__.__globals__ }}"
'''
BOUND = "message: the template is refused: 9 ** 12000000 would be a number of more than 4096 bits"


def admin(server: Server) -> httpx.Client:
    return server.client(server.admin)


def test_a_template_past_a_bound_is_a_journey_problem_and_cannot_be_published(server: Server) -> None:
    with admin(server) as client:
        created = client.post("/v1/journeys", json={"source": HOSTILE, "slug": "power"})
        assert created.status_code == 201
        [problem] = created.json()["version"]["errors"]
        assert (problem["line"], problem["column"], problem["message"]) == (4, 3, BOUND)

        refused = client.post("/v1/journeys/power/publish")
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert [(d["line"], d["message"]) for d in refused.json()["diagnostics"]] == [(4, BOUND)]

        fixed = client.put("/v1/journeys/power/draft", json={"source": HOSTILE.replace("9 ** 12000000", "9 ** 2")})
        assert fixed.json()["valid"] is True
        assert client.post("/v1/journeys/power/publish").status_code == 200


def test_unsafe_access_in_a_template_is_a_journey_problem(server: Server) -> None:
    with admin(server) as client:
        created = client.post("/v1/journeys", json={"source": UNSAFE, "slug": "leak"})
        messages = [p["message"] for p in created.json()["version"]["errors"]]
        refused = client.post("/v1/journeys/leak/publish")
    assert messages == ["message: the template is refused: it reads '__init__', which is not available in messages",
                        "message: the template is refused: it reads '__globals__', which is not available in messages"]
    assert refused.status_code == 422
