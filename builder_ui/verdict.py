"""A split's result in plain words: each arm against the control (or the first arm).

"B converts 2.1 points better than A; not yet significant." The difference is in percentage
points, and it is called significant when Newcombe's 95% interval for it (`api.stats`)
excludes zero. Below `MIN_ARM_SIZE` users in either arm no verdict is given: with a few dozen
users an interval is so wide that any wording would mislead.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.stats import newcombe_interval, wilson_interval

MIN_ARM_SIZE = 30  # users per arm before the report says which converts better
SAME_POINTS = 0.05  # a difference that rounds to 0.0 points reads as "the same as"


@dataclass(frozen=True)
class Arm:
    name: str
    entered: int
    converted: int
    control: bool = False

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.converted, self.entered)


@dataclass(frozen=True)
class Comparison:
    arm: Arm
    baseline: Arm
    points: float | None  # rate difference arm minus baseline, in percentage points; None without data
    interval: tuple[float, float]  # the difference's 95% interval, in points
    significant: bool
    enough: bool

    @property
    def text(self) -> str:
        return sentence(self)


def baseline_of(arms: list[Arm]) -> Arm | None:
    """The control arm, else the first: the one every other arm is compared to."""
    return next((a for a in arms if a.control), arms[0] if arms else None)


def compare(arm: Arm, baseline: Arm) -> Comparison:
    enough = min(arm.entered, baseline.entered) >= MIN_ARM_SIZE
    if arm.rate is None or baseline.rate is None:
        return Comparison(arm, baseline, None, (-100.0, 100.0), False, False)
    low, high = newcombe_interval(baseline.converted, baseline.entered, arm.converted, arm.entered)
    significant = enough and (low > 0 or high < 0)
    return Comparison(arm, baseline, (arm.rate - baseline.rate) * 100, (low * 100, high * 100), significant, enough)


def compare_all(arms: list[Arm]) -> list[Comparison]:
    baseline = baseline_of(arms)
    return [compare(arm, baseline) for arm in arms if baseline is not None and arm is not baseline]


def sentence(c: Comparison) -> str:
    if not c.enough or c.points is None:
        return f"{c.arm.name} against {c.baseline.name}: not enough data yet (n < {MIN_ARM_SIZE} in {_small(c)})"
    if abs(c.points) < SAME_POINTS:
        how = f"{c.arm.name} converts the same as {c.baseline.name}"
    else:
        way = "better" if c.points > 0 else "worse"
        how = f"{c.arm.name} converts {abs(c.points):.1f} points {way} than {c.baseline.name}"
    return how + ("; significant at 95%" if c.significant else "; not yet significant")


def _small(c: Comparison) -> str:
    small = [a.name for a in (c.baseline, c.arm) if a.entered < MIN_ARM_SIZE]
    return " and ".join(small)
