"""The builder's server time: every page and partial, and the canvas of a large journey.

    python benchmarks/builder.py            # a generated 200-step journey, 50 rounds
    python benchmarks/builder.py --steps 1000
    python benchmarks/builder.py --smoke    # CI: 20 steps, 3 rounds, so this cannot rot

Two parts, printed one after the other:

1. Every builder page and partial a marketer meets (the list, the editor, a step's form and
   its check as they type, the settings, the condition editor's redraw, an edit, the publish
   review, the report, the versions, the simulation form, the coupon pools), requested over
   HTTP on loopback from a real uvicorn serving the real app on a SQLite file, signed in, with
   the generated journey live and a draft of it, and profiles and events behind it. Beside
   each, the floor: a bare Starlette app on the same uvicorn answering a body of the same size,
   measured in the same run, alternating, so the ratio holds on a noisy machine.
2. In-process, without HTTP: parse, validate and lay out the text (`canvas.build`) and render
   the editor page; and for one edit (insert a step in the middle) everything the edit route
   does after reading the draft.

Printed: median and p95 milliseconds, the size of each response, and ours / floor.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder_ui import canvas as cv  # noqa: E402
from builder_ui import (  # noqa: E402
    edits,
    forms,
    palette,
)
from builder_ui.drafts import Draft, Suggestions  # noqa: E402
from builder_ui.templating import templates  # noqa: E402
from dsl import model as m  # noqa: E402
from dsl.formatter import format_journey  # noqa: E402

SECONDS_PER_HOUR = 3600


def generated(steps: int) -> str:
    """A journey of about `steps` steps: runs of waits and sends, with a split, an if and a
    wait-for-event every twenty steps, so the canvas has branches all the way down."""
    body: list[m.Step] = []
    n = 0
    while n < steps:
        i = len(body)
        if i % 20 == 19:
            arms = (m.SplitArm(50.0, False, (m.Send("push", template=f"t{i}", label=f"p{i}"),)),
                    m.SplitArm(50.0, True, (m.Pass(),)))
            body.append(m.Split(f"test {i}", arms, label=f"split{i}"))
            n += 2
        elif i % 20 == 9:
            received = m.Branch((m.Tag("add", f"t{i}", label=f"tag{i}"),))
            body.append(m.WaitForEvent("purchase", None, 86_400, received, m.Branch((m.Pass(),)), label=f"wf{i}"))
            n += 2
        elif i % 2:
            body.append(m.Send("sms", text=f"Hi {{{{ user.first_name }}}}, message {i}", label=f"sms{i}"))
            n += 1
        else:
            body.append(m.Wait(SECONDS_PER_HOUR * (1 + i % 5), label=f"wait{i}"))
            n += 1
    journey = m.Journey("Benchmark", triggers=(m.EventTrigger("signup"),), steps=tuple(body))
    return format_journey(journey)


class _Request:
    """Just enough of a request for `TemplateResponse` (it reads nothing else)."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {"type": "http"}

    def url_for(self, name: str, **params: Any) -> str:
        return "/"


def render(name: str, context: dict[str, Any]) -> bytes:
    template = templates().get_template(name)
    base = {"csrf": "x" * 43, "user": None, "root": "/builder", "request": _Request()}
    return template.render({**base, **context}).encode()


def draw(source: str) -> bytes:
    draft = Draft("bench", "Benchmark", "draft", None, 1, source)
    return render("editor.html", {"draft": draft, "canvas": cv.build(source), "suggestions": Suggestions({}, []),
                                  "message": None, "panel": None})


def edit(source: str) -> bytes:
    journey = cv.build(source).journey
    assert journey is not None
    middle = len(journey.steps) // 2
    edited = edits.insert_step(journey, (), middle, palette.new_step("sms", journey))
    text = format_journey(edited)
    draft = Draft("bench", "Benchmark", "draft", None, 1, text)
    return render("workspace.html", {"draft": draft, "canvas": cv.build(text), "with_text": True, "refused": False,
                                     "message": None, "panel": None})


def timed(call: Any, source: str, rounds: int) -> tuple[list[float], int]:
    samples, size = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        size = len(call(source))
        samples.append((time.perf_counter() - start) * 1000)
    return samples, size


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


# --------------------------------------------------------------------------- every page, over HTTP

USERNAME, PASSWORD = "bench", "benchmark password, long enough"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REV = re.compile(r'id="rev" name="rev" value="([^"]+)"')
EXAMPLES = ROOT / "examples"


class Served:
    """An ASGI app on a real uvicorn on loopback, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", ws="none"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise SystemExit("uvicorn did not start")
            time.sleep(0.01)
        host, port = self.sock.getsockname()
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


def floor_app() -> Any:
    """The floor: a bare Starlette app answering `size` bytes of HTML, as a page of ours would."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("x" * int(request.path_params["size"]))

    return Starlette(routes=[Route("/{size:int}", page, methods=["GET", "POST"])])


def seeded_app(folder: Path, source: str, people: int) -> tuple[Any, str, str]:
    """The real app on a new SQLite file: a builder user, the generated journey live with a
    draft of it, `people` profiles with a few events each, a stocked coupon pool."""
    from datetime import UTC, datetime

    from actions.settings import load_settings
    from api.app import create_app
    from api.settings import Settings
    from builder_ui.passwords import hash_password
    from journeyflow.cli import load_catalog
    from storage import connect, coupons, keys, migrate, users

    url = f"sqlite:///{folder / 'bench.db'}"
    db = connect(url)
    migrate(db)
    now = datetime.now(UTC)
    with db.begin() as conn:
        users.create_user(conn, USERNAME, hash_password(PASSWORD), True, now)
        _, admin = keys.create(conn, "admin", "bench admin", now)
        _, write = keys.create(conn, "write", "bench write", now)
        coupons.create_pool(conn, "BENCH_POOL", now)
        coupons.import_csv(conn, "BENCH_POOL", [f"B-{n}" for n in range(1_000)])
    db.dispose()
    settings = Settings(database_url=url, catalog=load_catalog(EXAMPLES / "journeys" / "catalog.toml"),
                        actions=load_settings(EXAMPLES / "actions.toml", {}))
    return create_app(settings), admin, write


def seed(client: Any, admin: str, write: str, source: str, people: int) -> None:
    bearer = {"Authorization": f"Bearer {admin}"}
    made = client.post("/v1/journeys", json={"source": source, "slug": "bench"}, headers=bearer)
    assert made.status_code == 201, made.text
    assert client.post("/v1/journeys/bench/publish", headers=bearer).status_code == 200
    draft = source.replace("message 1,", "message one,", 1)
    assert client.put("/v1/journeys/bench/draft", json={"source": draft}, headers=bearer).status_code == 200
    batch: list[dict[str, Any]] = []
    for n in range(people):
        user = f"u{n}"
        batch.append({"type": "identify", "userId": user, "traits": {"first_name": f"P{n}", "total_spend": n % 900,
                                                                     "phone": f"+86138{n:08d}"}})
        batch.append({"type": "track", "userId": user, "event": "purchase",
                      "properties": {"category": "lens" if n % 3 else "care_solution", "amount": 100 + n % 50}})
        if len(batch) >= 500:
            assert client.post("/v1/batch", json={"batch": batch}, auth=(write, "")).status_code == 200
            batch = []
    if batch:
        assert client.post("/v1/batch", json={"batch": batch}, auth=(write, "")).status_code == 200


def sign_in(client: Any) -> str:
    token = CSRF.search(client.get("/builder/login").text)
    assert token is not None
    signed = client.post("/builder/login", data={"username": USERNAME, "password": PASSWORD,
                                                 "csrf_token": token.group(1), "next": "/builder/"})
    assert signed.status_code == 303, signed.text
    found = CSRF.search(client.get("/builder/").text)
    assert found is not None
    return found.group(1)


# The audience's condition editor with one row, "+ condition" pressed: the redraw's form.
CONDITION_ROWS = {"cond_name": "audience", "cond_action": "add:r", "audience~mode": "rows",
                  "audience~r~kind": "group", "audience~r~join": "all", "audience~r.0~kind": "row",
                  "audience~r.0~field": "user.total_spend", "audience~r.0~prev": "user.total_spend",
                  "audience~r.0~op": "gte", "audience~r.0~value": "100"}


def page_requests(client: Any, source: str) -> list[tuple[str, Any]]:
    """(what, a call making the request and returning the response) for every builder page."""
    base = "/builder/journeys/bench"
    journey = cv.build(source).journey
    assert journey is not None
    middle = len(journey.steps) // 2
    send = next(i for i, step in enumerate(journey.steps) if isinstance(step, m.Send))
    step_form = {**forms.step_fields(journey.steps[send]), "path": str(send)}
    state = {"rev": REV.search(client.get(base).text).group(1)}  # type: ignore[union-attr]

    def htmx(path: str, data: dict[str, str]) -> Any:
        return client.post(path, data=data, headers={"HX-Request": "true"})

    def insert() -> Any:
        answer = htmx(f"{base}/insert", {"rev": state["rev"], "kind": "sms", "block": "", "index": str(middle)})
        state["rev"] = REV.search(answer.text).group(1)  # type: ignore[union-attr]
        return answer

    def delete() -> Any:
        answer = htmx(f"{base}/delete", {"rev": state["rev"], "path": str(middle)})
        state["rev"] = REV.search(answer.text).group(1)  # type: ignore[union-attr]
        return answer

    return [
        ("journey list", lambda: client.get("/builder/")),
        ("editor page", lambda: client.get(base)),
        ("step form", lambda: client.get(f"{base}/step", params={"path": str(send)})),
        ("step check as one types", lambda: htmx(f"{base}/step/check", step_form)),
        ("settings form", lambda: client.get(f"{base}/settings")),
        ("condition editor redraw", lambda: htmx(f"{base}/condition", CONDITION_ROWS)),
        ("insert a step (edit)", insert),
        ("delete it again (edit)", delete),
        ("publish review", lambda: client.get(f"{base}/review")),
        ("report", lambda: client.get(f"{base}/report")),
        ("versions", lambda: client.get(f"{base}/versions")),
        ("simulation form", lambda: client.get(f"{base}/simulate")),
        ("coupon pools", lambda: client.get("/builder/pools")),
    ]


def pages(source: str, rounds: int, people: int) -> None:
    import tempfile

    import httpx

    with tempfile.TemporaryDirectory() as folder:
        app, admin, write = seeded_app(Path(folder), source, people)
        ours, floor = Served(app), Served(floor_app())
        try:
            with httpx.Client(base_url=ours.url, timeout=60) as client, \
                    httpx.Client(base_url=floor.url, timeout=60) as bare:
                seed(client, admin, write, source, people)
                client.headers["X-CSRF-Token"] = sign_in(client)
                print(f"every page: {people:,} profiles, {rounds} rounds, over HTTP on loopback; "
                      "floor = a bare Starlette app answering as many bytes")
                for what, call in page_requests(client, source):
                    mine: list[float] = []
                    base: list[float] = []
                    size = 0
                    for _ in range(rounds):
                        start = time.perf_counter()
                        answer = call()
                        mine.append((time.perf_counter() - start) * 1000)
                        assert answer.status_code < 400, f"{what}: {answer.status_code} {answer.text[:300]}"
                        size = len(answer.content)
                        start = time.perf_counter()
                        bare.get(f"/{size}")
                        base.append((time.perf_counter() - start) * 1000)
                    ratio = statistics.median(mine) / statistics.median(base)
                    print(f"  {what:28} median {statistics.median(mine):7.1f} ms  p95 {p95(mine):7.1f} ms  "
                          f"{size / 1024:7.1f} KiB   floor {statistics.median(base):5.1f} ms   x{ratio:5.1f}")
        finally:
            ours.stop()
            floor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--people", type=int, default=2_000, help="profiles behind the pages")
    parser.add_argument("--smoke", action="store_true", help="a quick pass for CI")
    args = parser.parse_args()
    steps, rounds = (20, 3) if args.smoke else (args.steps, args.rounds)
    source = generated(steps)
    pages(source, rounds, 30 if args.smoke else args.people)
    print()
    counted = len(edits.paths(cv.build(source).journey or m.Journey("")))
    print(f"journey: {counted} steps, {len(source.splitlines())} lines of DSL, {rounds} rounds")
    for title, call in (("render the canvas (editor page)", draw), ("apply one edit (htmx partials)", edit)):
        samples, size = timed(call, source, rounds)
        print(f"{title:34} median {statistics.median(samples):7.1f} ms  p95 {p95(samples):7.1f} ms  "
              f"response {size / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
