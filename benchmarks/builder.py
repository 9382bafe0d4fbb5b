"""The builder's server time on a large journey: drawing its canvas and applying one edit.

    python benchmarks/builder.py            # a generated 200-step journey, 50 rounds
    python benchmarks/builder.py --steps 1000
    python benchmarks/builder.py --smoke    # CI: 20 steps, 3 rounds, so this cannot rot

Measured in-process on the real code path, without HTTP: parse, validate and lay out the text
(`canvas.build`) and render the editor page; and for one edit (insert a step in the middle)
everything the edit route does after reading the draft: parse, edit the model, format, build
the new canvas and render the htmx partials. Printed: median and p95 milliseconds, and the
size of the page and of the edit's htmx response (what goes over the wire, before gzip).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder_ui import canvas as cv  # noqa: E402
from builder_ui import edits, palette  # noqa: E402
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
    return render("workspace.html", {"draft": draft, "canvas": cv.build(text), "with_text": True,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="a quick pass for CI")
    args = parser.parse_args()
    steps, rounds = (20, 3) if args.smoke else (args.steps, args.rounds)
    source = generated(steps)
    counted = len(edits.paths(cv.build(source).journey or m.Journey("")))
    print(f"journey: {counted} steps, {len(source.splitlines())} lines of DSL, {rounds} rounds")
    for title, call in (("render the canvas (editor page)", draw), ("apply one edit (htmx partials)", edit)):
        samples, size = timed(call, source, rounds)
        print(f"{title:34} median {statistics.median(samples):7.1f} ms  p95 {p95(samples):7.1f} ms  "
              f"response {size / 1024:7.1f} KiB")


if __name__ == "__main__":
    main()
