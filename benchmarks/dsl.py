"""Parse + validate + compile speed of the journey language.

    python benchmarks/dsl.py            # full run: every example, and generated 500- and 2000-step journeys
    python benchmarks/dsl.py --smoke    # what CI runs: one small pass, so this file cannot rot

Each figure is the median of several timed runs in this process; read the ratios between rows
of one run rather than absolute times, since this machine is shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl import compile_journey, parse, validate  # noqa: E402
from dsl.ids import walk_steps  # noqa: E402
from dsl.parser import _new_lark  # noqa: E402


def generated_journey(blocks: int) -> str:
    """A journey of `blocks` repeated sections, each with every kind of step (10 steps)."""
    lines = [
        'journey "Generated"',
        '  trigger event "purchase" where event.amount > 100',
        '  audience "vip" in user.tags or count of "purchase" within 365d >= 3',
        "  entry once every 30d",
        '  goal "repeat" on event "purchase" within 14d',
        "  quiet hours 21:00-09:00",
        "  frequency cap 3 messages per 1d",
        "",
    ]
    for i in range(blocks):
        lines += [
            f"  @wait_{i} wait 1d",
            f'  @check_{i} if user.points > {i} and lower(user.city) == "shanghai":',
            f'    @sms_{i} send sms "Hi {{{{ user.first_name }}}}, offer {i}"',
            "  else:",
            f'    @split_{i} split "test {i}":',
            "      50%:",
            f'        @push_{i} send push template "promo" title "Offer {i}"',
            "      50% control:",
            "        pass",
            f'  @wait_buy_{i} wait for event "purchase" where event.amount > {i} up to 3d:',
            "    received:",
            f"      @points_{i} update user.points += 10",
            "    timeout:",
            f'      @tag_{i} add tag "quiet_{i}"',
            f'  @stage_{i} update user.stage = "stage_{i}"',
        ]
    return "\n".join(lines) + "\n"


def median_seconds(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, text: str, repeat: int) -> tuple[str, int, float, float, float]:
    journey = parse(text)
    steps = sum(1 for _ in walk_steps(journey.steps))
    t_parse = median_seconds(lambda: parse(text), repeat)
    t_validate = median_seconds(lambda: validate(journey, text), repeat)
    t_compile = median_seconds(lambda: compile_journey(journey), repeat)
    return name, steps, t_parse, t_validate, t_compile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="one quick pass (CI)")
    args = parser.parse_args()
    repeat = 1 if args.smoke else 15
    sizes = [5] if args.smoke else [50, 200]  # blocks of 10 steps: 500 and 2000 steps

    start = time.perf_counter()
    _new_lark()  # what each thread pays once for its own parser (dsl/parser.py)
    grammar_ms = (time.perf_counter() - start) * 1000

    cases = [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples/journeys").glob("*.journey"))]
    cases += [(f"generated {blocks * 10}-step", generated_journey(blocks)) for blocks in sizes]
    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("measuring", total=len(cases))
        for name, text in cases:
            rows.append(measure(name, text, repeat))
            progress.advance(task)

    table = Table(title=f"DSL: parse + validate + compile (median of {repeat})")
    for column in ("journey", "steps", "parse ms", "validate ms", "compile ms", "total ms", "steps/s"):
        table.add_column(column, justify="left" if column == "journey" else "right")
    for name, steps, tp, tv, tc in rows:
        total = tp + tv + tc
        table.add_row(name, str(steps), f"{tp * 1000:.2f}", f"{tv * 1000:.2f}", f"{tc * 1000:.2f}",
                      f"{total * 1000:.2f}", f"{steps / total:,.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"grammar load (with lark's cache): {grammar_ms:.1f} ms")


if __name__ == "__main__":
    main()
