"""Hypothesis strategies that build *canonical* journey models directly, without any text.

"Canonical" means: a model the parser could have produced. The forms the parser never
produces are avoided on purpose:

- a minus directly over a numeric literal (the parser folds `-1` into `Lit(-1)`);
- comments on the first arm of an `if` (the `If` step carries the comments of that line);
- comment text with a line break or trailing whitespace (the parser strips it);
- names that are keywords of the grammar (they would not read back as names);
- NaN or infinite floats, and durations of zero or less;
- a calendar wait whose seconds are not whole days (the parser only builds days * 86,400);
- a high surrogate directly followed by a low one in a string (JSON reads the escaped pair
  back as one character).
"""

from __future__ import annotations

import re
from importlib import resources
from itertools import pairwise

from hypothesis import strategies as st

from dsl import model as m
from dsl.parser import MAX_DURATION_DAYS

# Every word the grammar spells out in quotes is a keyword: "and", "count", "wait", "sms", ...
GRAMMAR = resources.files("dsl").joinpath("journey.lark").read_text(encoding="utf-8")
KEYWORDS = frozenset(re.findall(r'"([A-Za-z_]+)"', GRAMMAR))

# Names that *start* with a keyword: the lexer must not split them.
TRICKY_NAMES = ("order", "inside", "notify", "counter", "waiting", "android", "truest", "nullable",
                "everyone", "tag_", "_if", "within2", "ever_", "sms_opt_in", "pushed", "mondays")

# --------------------------------------------------------------------------- small values

identifiers = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.sampled_from(TRICKY_NAMES),
).filter(lambda name: name not in KEYWORDS)

# A label is matched as one `@word` token, so it may be a keyword too.
labels = st.one_of(identifiers, st.sampled_from(sorted(KEYWORDS)))
optional_labels = st.none() | labels

SPECIAL_CHARACTERS = (
    '"', "\\", "#", "'", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff",
    "é", "中", "文", "订", "单", "😀", "👍🏽", "{", "}", ":", "%", "@", " ", "\\u0041", "\ud800", "\udfff",
)


def _no_surrogate_pair(text: str) -> bool:
    return not any(0xD800 <= ord(a) <= 0xDBFF and 0xDC00 <= ord(b) <= 0xDFFF for a, b in pairwise(text))


strings = st.one_of(
    st.text(max_size=12),
    st.lists(st.sampled_from(SPECIAL_CHARACTERS), max_size=6).map("".join),
    st.sampled_from(["", "purchase", "lens_intro", "Hi {{ user.first_name | default('there') }}",
                     "订单已发货 📦", "say \"hi\"", "C:\\temp\\", "# not a comment", "a\\\"b"]),
).filter(_no_surrogate_pair)

# Text of a comment, as the parser keeps it: everything after the `#`, right-stripped.
comment_texts = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="\n\r", exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["", " the test", " TODO: ask legal", "#", ' "quoted" # nested', " 中文注释 😀"]),
).map(str.rstrip)

comments = st.one_of(
    st.just(m.NO_COMMENTS),
    st.builds(
        m.Comments,
        leading=st.lists(comment_texts, max_size=2).map(tuple),
        trailing=st.none() | comment_texts,
    ),
)

# Durations are held in seconds; any positive count formats back (`90061` is `1d1h1m1s`).
durations = st.one_of(
    st.integers(min_value=1, max_value=10**9),
    st.sampled_from([1, 59, 60, 3600, 86400, 7 * 86400, 30 * 86400, 86400 + 3661]),
)

times = st.builds(m.TimeOfDay, hour=st.integers(0, 23), minute=st.integers(0, 59))

# Split percentages: non-negative, at most two decimals (the sum is not checked by the parser).
percents = st.one_of(
    st.integers(min_value=0, max_value=10_000).map(lambda n: n / 100),
    st.sampled_from([0.0, 50.0, 33.33, 0.01, 12.5, 100.0]),
)

finite_floats = st.floats(allow_nan=False, allow_infinity=False)

# --------------------------------------------------------------------------- expressions

literals = st.one_of(
    st.builds(m.Lit, strings),
    st.builds(m.Lit, st.integers(min_value=-(10**30), max_value=10**30)),
    st.builds(m.Lit, finite_floats),
    st.builds(m.Lit, st.booleans()),
    st.just(m.Lit(None)),
)

# `user` is a keyword of `in user zone`, so `identifiers` leaves it out; the contextual lexer
# reads it as a name in an expression, and profile paths are the commonest there are.
paths = st.one_of(
    st.builds(m.Path, st.lists(identifiers, min_size=1, max_size=3).map(tuple)),
    st.lists(identifiers, min_size=1, max_size=2).map(lambda rest: m.Path(("user", *rest))),
)

leaf_expressions = st.one_of(
    literals,
    st.builds(m.Dur, durations),
    paths,
    st.builds(m.History, event=strings, where=st.none(), window_seconds=st.none() | durations),
)


def _negate(operand: m.Expr) -> m.Expr:
    """`-x`, as the parser builds it: a numeric literal takes the sign itself."""
    if isinstance(operand, m.Lit) and type(operand.value) in (int, float):
        return m.Lit(-operand.value)  # type: ignore[operator]
    return m.Unary("-", operand)


def objects(children: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.ObjectExpr]:
    pairs = st.tuples(strings, children)
    return st.builds(m.ObjectExpr, st.lists(pairs, max_size=3).map(tuple))


def _extend(children: st.SearchStrategy[m.Expr]) -> st.SearchStrategy[m.Expr]:
    some = st.lists(children, max_size=3).map(tuple)
    return st.one_of(
        st.builds(m.Unary, st.just("not"), children),
        children.map(_negate),
        st.builds(m.Binary, st.sampled_from(["or", "and", "+", "-", "*", "/"]), children, children),
        st.builds(m.Compare, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains"]),
                  children, children),
        st.builds(m.Call, identifiers, some),
        st.builds(m.ListExpr, some),
        objects(children),
        st.builds(m.History, event=strings, where=children, window_seconds=st.none() | durations),
    )


def expressions(max_leaves: int = 8) -> st.SearchStrategy[m.Expr]:
    return st.recursive(leaf_expressions, _extend, max_leaves=max_leaves)


exprs = expressions()
optional_exprs = st.none() | exprs
webhook_bodies = objects(expressions(max_leaves=4))

# --------------------------------------------------------------------------- settings

triggers = st.one_of(
    st.builds(m.EventTrigger, event=strings, where=optional_exprs, comments=comments),
    st.builds(m.ConditionTrigger, condition=exprs, comments=comments),
    st.builds(m.ScheduleTrigger, cron=strings, zone=st.sampled_from([None, "user", "journey"]),
              comments=comments),
    st.builds(m.ApiTrigger, comments=comments),
)

audiences = st.builds(m.Audience, condition=exprs, comments=comments)

entries = st.one_of(
    st.builds(m.Entry, mode=st.sampled_from(["once", "always"]), every_seconds=st.none(), comments=comments),
    st.builds(m.Entry, mode=st.just("once_every"), every_seconds=durations, comments=comments),
)

exit_rules = st.one_of(
    st.builds(m.ExitOnEvent, event=strings, where=optional_exprs, comments=comments),
    st.builds(m.ExitWhen, condition=exprs, comments=comments),
)

goals = st.one_of(
    st.builds(m.Goal, name=strings, event=strings, where=optional_exprs, within_seconds=durations,
              then_exit=st.booleans(), comments=comments),
    st.builds(m.Goal, name=strings, event=st.none(), where=exprs, within_seconds=durations,
              then_exit=st.booleans(), comments=comments),
)

quiet_hours = st.builds(m.QuietHours, start=times, end=times, comments=comments)
timezones = st.builds(m.TimeZone, name=strings, comments=comments)
caps = st.builds(m.FrequencyCap, count=st.integers(min_value=0, max_value=10**6), per_seconds=durations,
                 channel=st.sampled_from([None, *m.CHANNELS]), comments=comments)

# --------------------------------------------------------------------------- steps

_step_kw = {"label": optional_labels, "comments": comments, "blank_before": st.booleans()}


def _send(channel: str, body: tuple[str, str], title: str | None, **kw: object) -> m.Send:
    kind, value = body
    return m.Send(channel, **{kind: value}, title=title, **kw)  # type: ignore[arg-type]


# Calendar days, held as seconds: up to the parser's century, which is what it accepts.
calendar_seconds = st.one_of(
    st.integers(min_value=1, max_value=MAX_DURATION_DAYS),
    st.sampled_from([1, 2, 7, 14, 21]),
).map(lambda days: days * 86_400)

simple_steps = st.one_of(
    st.builds(m.Wait, seconds=durations, **_step_kw),
    st.builds(m.Wait, seconds=calendar_seconds, calendar=st.just(True), **_step_kw),
    st.builds(m.WaitUntil, time=times, weekday=st.sampled_from([None, *m.WEEKDAYS]), **_step_kw),
    st.builds(_send, channel=st.sampled_from(m.CHANNELS),
              body=st.tuples(st.sampled_from(["text", "template"]), strings), title=st.none() | strings,
              **_step_kw),
    st.builds(m.IssueCoupon, pool=strings, result=st.none() | identifiers, **_step_kw),
    st.builds(m.CallWebhook, url=strings, body=st.none() | webhook_bodies, result=st.none() | identifiers,
              **_step_kw),
    st.builds(m.UpdateProfile,
              path=st.lists(identifiers, max_size=2).map(lambda rest: m.Path(("user", *rest))),
              op=st.sampled_from(["=", "+=", "-="]), value=exprs, **_step_kw),
    st.builds(m.Tag, action=st.sampled_from(["add", "remove"]), tag=strings, **_step_kw),
    st.builds(m.ExitStep, **_step_kw),
    st.builds(m.Pass, **_step_kw),
)


def _wait_for(event: str, where: m.Expr | None, timeout_seconds: int,
              branches: tuple[m.Branch | None, m.Branch | None], **kw: object) -> m.WaitForEvent:
    received, timeout = branches
    return m.WaitForEvent(event, where, timeout_seconds, received, timeout, **kw)  # type: ignore[arg-type]


def _compound(children: st.SearchStrategy[m.Step]) -> st.SearchStrategy[m.Step]:
    blocks = st.lists(children, min_size=1, max_size=2).map(tuple)
    branches = st.builds(m.Branch, steps=blocks, comments=comments)
    first_arms = st.builds(m.CondBranch, condition=exprs, steps=blocks)  # its comments are the If's
    elif_arms = st.builds(m.CondBranch, condition=exprs, steps=blocks, comments=comments)
    split_arms = st.builds(m.SplitArm, percent=percents, control=st.booleans(), steps=blocks,
                           label=optional_labels, comments=comments)
    received_and_timeout = st.one_of(
        st.tuples(branches, st.none()), st.tuples(st.none(), branches), st.tuples(branches, branches),
    )
    return st.one_of(
        st.builds(m.If,
                  arms=st.tuples(first_arms, st.lists(elif_arms, max_size=2)).map(lambda a: (a[0], *a[1])),
                  otherwise=st.none() | branches, **_step_kw),
        st.builds(m.Split, name=strings, arms=st.lists(split_arms, min_size=1, max_size=3).map(tuple),
                  **_step_kw),
        st.builds(_wait_for, event=strings, where=optional_exprs, timeout_seconds=durations,
                  branches=received_and_timeout, **_step_kw),
    )


steps = st.recursive(simple_steps, _compound, max_leaves=6)

# --------------------------------------------------------------------------- journeys


def _tuple_of(strategy: st.SearchStrategy[object], max_size: int) -> st.SearchStrategy[tuple[object, ...]]:
    return st.lists(strategy, max_size=max_size).map(tuple)


journeys = st.builds(
    m.Journey,
    name=strings,
    triggers=_tuple_of(triggers, 3),
    audience=st.none() | audiences,
    entry=st.none() | entries,
    exits=_tuple_of(exit_rules, 2),
    goals=_tuple_of(goals, 2),
    quiet_hours=st.none() | quiet_hours,
    timezone=st.none() | timezones,
    caps=_tuple_of(caps, 2),
    steps=st.lists(steps, min_size=1, max_size=4).map(tuple),
    comments=comments,
    end_comments=_tuple_of(comment_texts, 2),
)
