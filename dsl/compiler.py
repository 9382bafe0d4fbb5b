"""Model to graph. Blocks are compiled back to front, so each step already knows where the
flow goes after it; branches of a compound step all rejoin at the step that follows it."""

from __future__ import annotations

from dataclasses import replace

from . import graph as g
from . import model as m
from .ids import assign_ids
from .parser import normalize, parse
from .validate import Catalog, validate


class _Compiler:
    def __init__(self, journey: m.Journey) -> None:
        self.ids = assign_ids(journey)
        self.nodes: dict[str, g.Node] = {}

    def block(self, steps: tuple[m.Step, ...], after: str) -> str:
        """Compile a block whose flow continues at `after`; returns the block's entry id."""
        target = after
        for step in reversed(steps):
            target = self.step(step, target)
        return target

    def step(self, step: m.Step, after: str) -> str:
        sid = self.ids[id(step)]
        line = step.loc.line
        node: g.Node
        match step:
            case m.Pass():
                return after
            case m.Wait(seconds=seconds, calendar=calendar):
                node = g.WaitNode(sid, line, seconds, after, calendar)
            case m.WaitUntil(time=time, weekday=weekday):
                day = m.WEEKDAYS.index(weekday) if weekday else None
                node = g.WaitUntilNode(sid, line, time.hour, time.minute, day, after)
            case m.WaitForEvent(received=received, timeout=timeout):
                assert received is not None and timeout is not None, "validate() first"
                node = g.WaitForEventNode(sid, line, step.event, step.where, step.timeout_seconds,
                                          self.block(received.steps, after),
                                          self.block(timeout.steps, after))
            case m.If(arms=arms, otherwise=otherwise):
                conditions = tuple((arm.condition, self.block(arm.steps, after)) for arm in arms)
                other = self.block(otherwise.steps, after) if otherwise else after
                node = g.BranchNode(sid, line, conditions, other)
            case m.Split(name=name, arms=arms):
                specs = tuple(g.SplitArmSpec(self.ids[id(arm)], arm.percent, arm.control,
                                             self.block(arm.steps, after)) for arm in arms)
                node = g.SplitNode(sid, line, name, specs)
            case m.Send(channel=channel, text=text, template=template, title=title):
                node = g.SendNode(sid, line, channel, text, template, title, after)
            case m.IssueCoupon(pool=pool, result=result):
                node = g.CouponNode(sid, line, pool, result, after)
            case m.CallWebhook(url=url, body=body, result=result):
                node = g.WebhookNode(sid, line, url, body, result, after)
            case m.UpdateProfile(path=path, op=op, value=value):
                node = g.UpdateNode(sid, line, path.parts[1:], op, value, after)
            case m.Tag(action=action, tag=tag):
                node = g.TagNode(sid, line, action, tag, after)
            case m.ExitStep():
                node = g.ExitNode(sid, line)
            case _:
                raise TypeError(f"not a step: {step!r}")
        self.nodes[sid] = node
        return sid


def _effective(trigger: m.Trigger) -> m.Trigger:
    """A trigger as the engine runs it: a schedule without `in ... zone` says whose clock it
    reads, so that the engine (and the graph's JSON) never has to know the default."""
    if isinstance(trigger, m.ScheduleTrigger) and trigger.zone is None:
        return replace(trigger, zone=m.DEFAULT_SCHEDULE_ZONE)
    return trigger


def compile_journey(journey: m.Journey) -> g.CompiledJourney:
    """Compile a journey that has passed `validate`."""
    compiler = _Compiler(journey)
    start = compiler.block(journey.steps, g.END)
    # back-to-front compilation fills `nodes` in reverse; keep document order for people
    ordered = dict(sorted(compiler.nodes.items(), key=lambda item: item[1].line))
    return g.CompiledJourney(
        name=journey.name,
        start=start,
        nodes=ordered,
        triggers=tuple(_effective(t) for t in journey.triggers),
        audience=journey.audience.condition if journey.audience else None,
        entry=journey.entry or m.Entry("once"),
        exits=journey.exits,
        goals=journey.goals,
        quiet_hours=journey.quiet_hours,
        timezone=journey.timezone.name if journey.timezone else None,
        caps=journey.caps,
    )


def compile_source(source: str | bytes, catalog: Catalog | None = None) -> g.CompiledJourney:
    """Parse, validate and compile; raises `JourneyError` (syntax or invalid) with every problem."""
    journey = parse(source)
    validate(journey, normalize(source), catalog)
    return compile_journey(journey)
