"""Syntax errors point at the right place and say something useful there.

Positions are 1-based (line, column) in characters; each case names a substring of the
message and, where the parser gives one, of the hint.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dsl.errors import JourneySyntaxError
from dsl.parser import MAX_NESTING, parse

HEAD = 'journey "x"\n'


@dataclass(frozen=True)
class Case:
    id: str
    source: str | bytes
    line: int
    column: int
    message: str
    hint: str | None = None


CASES = [
    Case("duration without a unit", HEAD + "  wait 2\n", 2, 8,
         "unexpected '2'", "a duration needs a unit"),
    # Compiles as language, but no engine could add 10**12 days to now.
    Case("duration past a century", HEAD + "  wait 1000000000000d\n", 2, 8,
         "this duration is longer than 36600 days", "within a century"),
    Case("window past a century", HEAD + '  goal "g" on event "e" within 5300w\n\n  pass\n', 2, 32,
         "this duration is longer than 36600 days"),
    Case("label too long for its index", HEAD + "  @" + "a" * 101 + " pass\n", 2, 3,
         "this label is longer than 100 characters"),
    Case("unknown channel", HEAD + '  send email "Hi"\n', 2, 8,
         "unexpected 'email'", 'channels are sms, push; "email" is not one of them'),
    Case("if without a colon", HEAD + "  if user.vip\n    pass\n", 2, 14,
         "expected \":\"", "ends with ':'"),
    Case("unexpected indentation", HEAD + "  wait 1d\n    pass\n", 3, 5,
         "unexpected indentation", "only a line ending in ':' opens an indented block"),
    Case("dedent to an unknown level", HEAD + "  if a:\n    pass\n   pass\n", 4, 4,
         "indented by 3, which matches no enclosing block (those are at 0, 2, 4)", "indent each block by 2 spaces"),
    Case("settings but no steps", HEAD + "  audience a\n\n# the end\n", 2, 13,
         "unexpected end of block", "a journey needs at least one step"),
    Case("nothing after the name", HEAD, 1, 12, "expected an indented block"),
    Case("empty file", "", 1, 1, 'unexpected end of file; expected "journey"'),
    Case("single-quoted string", HEAD + "  trigger event 'signup'\n  pass\n", 2, 17,
         "unexpected character \"'\"", 'strings use double quotes: "like this"'),
    Case("two words run together", HEAD + "  audience a andb\n  pass\n", 2, 14,
         "unexpected text 'andb'", "separate words with a space"),
    Case("a misspelt keyword", HEAD + '  sned sms "x"\n', 2, 3,
         "unexpected 'sned'", "steps start with one of: wait, send"),
    Case("chained comparison", HEAD + "  audience a < b < c\n  pass\n", 2, 18, "unexpected '<'"),
    Case("split arm without %", HEAD + '  split "s":\n    50:\n      pass\n', 3, 5,
         "unexpected '50'; expected a percentage like 50%"),
    Case("bad escape", HEAD + '  send sms "\\q"\n', 2, 12,
         "bad escape in string", 'the escapes are \\", \\\\, \\n, \\t and \\uXXXX'),
    Case("short unicode escape", HEAD + '  send sms "ok \\u12"\n', 2, 12, "bad escape in string"),
    Case("hour 25", HEAD + "  quiet hours 25:00-09:00\n  pass\n", 2, 15,
         "25:00 is not a time of day", "24-hour times from 00:00 to 23:59"),
    Case("minute 60", HEAD + "  wait until friday 23:60\n", 2, 21, "23:60 is not a time of day"),
    # Columns count characters, not bytes, and a BOM does not shift them.
    Case("invalid UTF-8", (HEAD + '  send sms "café ').encode() + b'\xff"\n', 2, 18,
         "the file is not valid UTF-8", "save the file as UTF-8"),
    Case("invalid UTF-8 after a BOM", b'\xef\xbb\xbfjourney "x"\n  send sms "\xc3\xa9\xc3\xa9 \xc3\x28"\n', 2, 16,
         "the file is not valid UTF-8"),
    Case("invalid UTF-8 on line 1", b'journey "\xed\xa0\x80"\n  pass\n', 1, 10, "the file is not valid UTF-8"),
    Case("audience set twice", HEAD + "  audience a\n  trigger api\n  audience b\n  pass\n", 4, 3,
         "audience is set twice", "the first is on line 2"),
    Case("timezone set twice", HEAD + '  timezone "UTC"\n  timezone "UTC"\n  pass\n', 3, 3,
         "timezone is set twice", "the first is on line 2"),
    Case("received twice", HEAD + '  wait for event "e" up to 1d:\n    received:\n      pass\n'
         "    received:\n      exit\n", 5, 5, '"received:" appears twice in this wait', "the first is on line 3"),
    Case("timeout twice", HEAD + '  wait for event "e" up to 1d:\n    timeout:\n      pass\n'
         "    received:\n      exit\n    timeout:\n      pass\n", 7, 5, '"timeout:" appears twice'),
    Case("CRLF line ends", HEAD.replace("\n", "\r\n") + "  wait 2\r\n", 2, 8, "unexpected '2'"),
    # calendar waits: `2 days` is one token, so a bare number still fails where it stands
    Case("calendar wait with a misspelt unit", HEAD + "  wait 2 dayz\n", 2, 8,
         "unexpected '2'", "`2 days` waits until the same time of day"),
    Case("calendar wait run together", HEAD + "  wait 2days\n", 2, 8, "unexpected '2'", "a duration needs a unit"),
    Case("calendar wait past a century", HEAD + "  wait 36601 days\n", 2, 8,
         "this wait is longer than 36600 days", "within a century"),
    Case("calendar weeks past a century", HEAD + "  @w wait 5229 weeks\n", 2, 11,
         "this wait is longer than 36600 days"),
    Case("calendar wait with too many digits", HEAD + "  wait " + "9" * 1001 + " days\n", 2, 8,
         "more than 1000 digits"),
    Case("words after a calendar wait", HEAD + "  wait 2 days later\n", 2, 15,
         "unexpected 'later'; expected the end of the line"),
    # schedule zones
    Case("unknown schedule zone", HEAD + '  trigger schedule "0 9 * * *" in usr zone\n  pass\n', 2, 35,
         "unexpected 'usr'; expected the end of the line, whose time zone: user or journey",
         "`in journey zone` at one moment for everyone"),
    Case("schedule zone without the word zone", HEAD + '  trigger schedule "0 9 * * *" in user\n  pass\n',
         2, 39, 'unexpected end of line; expected "zone"'),
    Case("schedule zone without in", HEAD + '  trigger schedule "0 9 * * *" journey zone\n  pass\n', 2, 32,
         "unexpected 'journey'; expected \"in\""),
    # goals that end the run
    Case("goal then something else", HEAD + '  goal "g" on event "e" within 14d then stop\n  pass\n', 2, 41,
         "unexpected 'stop'; expected \"exit\"", "a goal ends the run with `then exit`"),
    Case("goal exit without then", HEAD + '  goal "g" when user.a within 14d exit\n  pass\n', 2, 35,
         "unexpected 'exit'; expected \"then\"", "write `then exit` after the window"),
    Case("goal then before the window", HEAD + '  goal "g" on event "e" then exit within 1d\n  pass\n', 2, 25,
         "unexpected 'then'"),
    # Limits that keep every later pass (building, printing, comparing) safe.
    Case("too many digits", HEAD + "  wait " + "9" * 1001 + "d\n", 2, 8, "more than 1000 digits"),
    Case("number too large", HEAD + "  audience x > 1e400\n  pass\n", 2, 16,
         "this number is too large", "1.8e308"),
    Case("percentage too large", HEAD + '  split "s":\n    ' + "9" * 400 + "%:\n      pass\n", 3, 5,
         "this number is too large"),
    # the 98th `not` is level 101: the tree's root, the journey and the audience come first
    Case("nested too deeply", HEAD + "  audience " + "not " * 150 + "a\n  pass\n", 2, 12 + 4 * 97,
         f"nests more than {MAX_NESTING} levels deep", "each operator is a level"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_error_position_and_message(case: Case) -> None:
    with pytest.raises(JourneySyntaxError) as caught:
        parse(case.source)
    first = caught.value.diagnostics[0]
    assert (first.line, first.column) == (case.line, case.column), first
    assert case.message in first.message
    if case.hint is not None:
        assert first.hint is not None and case.hint in first.hint
    assert f":{case.line}:{case.column}: " in caught.value.render()


def test_several_independent_errors_are_reported_together() -> None:
    source = (
        HEAD
        + "  audience a ==\n"     # 2: expression cut short
        + "  entry twice\n"       # 3: unknown entry mode
        + "\n"
        + "  wait 2\n"            # 5: duration without a unit
        + "  if a\n"              # 6: no colon
        + "    pass\n"
        + '  send email "x"\n'    # 8: unknown channel
        + "  pass\n"
    )
    with pytest.raises(JourneySyntaxError) as caught:
        parse(source)
    found = [(d.line, d.column) for d in caught.value.diagnostics]
    assert found == [(2, 16), (3, 9), (5, 8), (6, 7), (8, 8)]
    hints = [d.hint or "" for d in caught.value.diagnostics]
    assert "a duration needs a unit" in hints[2]
    assert "ends with ':'" in hints[3]
    assert "channels are sms, push" in hints[4]
    assert str(caught.value).startswith("2:16: ") and "(and 4 more)" in str(caught.value)


def test_errors_are_listed_in_order_and_capped() -> None:
    source = HEAD + "".join(f"  wait {n}\n" for n in range(1, 30))
    with pytest.raises(JourneySyntaxError) as caught:
        parse(source)
    lines = [d.line for d in caught.value.diagnostics]
    assert lines == sorted(lines) and lines[0] == 2
    assert len(lines) == 10


def test_a_rendered_error_shows_the_line_and_a_caret() -> None:
    with pytest.raises(JourneySyntaxError) as caught:
        parse(HEAD + '  send email "Hi"\n')
    assert caught.value.render("lens.journey").splitlines() == [
        "lens.journey:2:8: unexpected 'email'; expected a channel (sms or push), the end of the line",
        '      send email "Hi"',
        "           ^^^^^",
        '    hint: channels are sms, push; "email" is not one of them',
    ]


def test_nesting_just_under_the_limit_parses() -> None:
    parse(HEAD + "  audience " + "not " * (MAX_NESTING - 10) + "a\n  pass\n")
    parse(HEAD + "  audience " + "a or " * (MAX_NESTING - 10) + "a\n  pass\n")
