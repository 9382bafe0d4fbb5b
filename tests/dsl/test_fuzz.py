"""Any input whatsoever either parses or raises `JourneySyntaxError` with usable positions.

Mutants of valid journeys reach much deeper into the grammar than random bytes do; both are
tried. A mutant that still parses must also survive a format round trip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import model as m
from dsl.errors import JourneySyntaxError
from dsl.formatter import format_journey
from dsl.parser import parse

SAMPLE = '''# Care-solution buyers who never bought lenses get a lens offer.
journey "Lens cross-sell: care-solution buyers"
  trigger event "purchase" where event.category == "care_solution"
  audience user.lens_orders == 0 and "unsubscribed" not in user.tags
  entry once every 30d
  exit on event "purchase" where event.category == "lens"
  goal "bought lenses" on event "purchase" where event.category == "lens" within 14d
  quiet hours 21:00-09:00
  frequency cap 2 messages per 1d

  wait 2d  # let them use it first
  if "vip" in user.tags:
    send push template "lens_intro_vip"
  else:
    # the test
    split "offer test":
      50%:
        send push template "lens_intro"
      40%:
        issue coupon "LENS_TRIAL" as trial
        send sms "Hi {{ user.first_name | default('there') }}, try lenses free: {{ trial.code }}"
      10% control:
        pass
  wait for event "purchase" where event.category == "lens" up to 7d:
    received:
      update user.stage = "lens_buyer"
    timeout:
      send sms template "lens_reminder"
# end
'''

# Every construct the sample lacks, so that mutants reach them too.
KITCHEN_SINK = '''journey "Every construct, 中文 😀 \\"quoted\\" # not a comment"
  trigger when user.total_spend >= 3000 or count of "purchase" where event.amount > -2.5 within 365d > 3
  trigger schedule "0 9 * * *"
  trigger schedule "30 9 * * *" in user zone
  trigger schedule "0 3 * * *" in journey zone
  trigger api
  audience not (user.country in ["CN", "HK"]) and -(user.age - 18) < 0 and exists(user.email)
  entry always
  exit when user.unsubscribed == true or user.stage != null
  goal "repeat" when count of "purchase" ever >= 2 within 30d
  goal "bought" on event "purchase" where event.amount > 0 within 14d then exit
  goal "spent" when user.total_spend >= 100 within 7d then exit
  timezone "Asia/Shanghai"
  frequency cap sms 1 message per 1d12h

  @first wait until monday 09:30
  @two_days wait 2 days
  wait 1 week
  wait 1 day
  call webhook "https://example.com/hook" with {"points": 100 * 2, "user": user.id, "tags": []} as reply
  @check if reply.ok contains "yes":
    add tag "vip"
  elif user.points / 2 <= 10:  # trailing
    remove tag "lapsing"
  else:
    exit
  update user.points += 100
  update user.stage -= 1
  send push "Hello" title "Title"
'''

EXAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("examples", "journeys").glob("*.journey"))
SEEDS = [SAMPLE.encode(), KITCHEN_SINK.encode(), *(path.read_bytes() for path in EXAMPLES)]

# Pieces worth splicing in: structure, quoting, bad encodings, and sizes that stress limits.
NUMBERS = [b"0", b"2", b"1.5", b"-1", b"007", b"2x", b"2 d", b"0d", b"1w2d3h4m5s", b"25:00", b"9:99", b"23:59",
           b"9" * 5000, b"9" * 4400 + b"d", b"1" * 1500 + b"w", b"1e999", b"1e-999", b"1" * 400 + b".5",
           b"1" * 400 + b"%", b"0.5%", b"1e3%", b"50 %", b"12:00-", b"3d3d",
           b"2 days", b"1 day", b"3 weeks", b"1 weeks", b"0 days", b"36601 days", b"2  days", b"2\tday"]
WORDS = [
    b"journey", b"if", b"elif", b"else:", b"split", b"wait", b"for", b"event", b"received:", b"timeout:",
    b"count of", b"within", b"ever", b"control", b"sms", b"push", b"email", b"true", b"null", b"not", b"in",
    b"and", b"or", b"contains", b"pass", b"exit", b"@label", b"@", b"andb", b"monday", b"messages", b"until",
    b"then", b"then exit", b"zone", b"user", b"in user zone", b"in journey zone", b"day", b"weeks",
    b"not " * 700 + b"a", b"(" * 600 + b"a" + b")" * 600, b"-" * 900 + b"a", b"a or " * 600 + b"a",
    b"1 + " * 600 + b"1", b"[" * 600 + b"]" * 600, b"f(" * 400 + b")" * 400, b"x" * 3000, b"a.b.c.d",
]
STRINGS = [b'"\\q"', b'"\\ud800"', b'"\\ud83d\\ude00"', b'"\\u12"', b"'x'", b'"', b'"#"', b'"a\\"',
           b'"\xff"', b'"\xed\xa0\x80"', b'"\xed\xa0\xbd\xed\xb8\x80"', b'"\t"', b'"\x00"',
           '"中文😀"'.encode(), b'"x" "y"']
SNIPPETS = [
    *NUMBERS, *WORDS, *STRINGS,
    b"\t", b'"', b"'", b":", b"#", b"\\", b"%", b"(", b")", b"[", b"]", b"{", b"}", b",", b"-", b".", b"=",
    b"+=", b" ", b"\n", b"\r", b"\r\n", b"\n\n", b"\x00", b"\x0c", b"\xef\xbb\xbf", b"\xff", b"\xc3",
    b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x9f\x98", "中文😀".encode(), b"  ", b" " * 7, b" " * 200 + b"pass",
    b"\t\t\t\t",
]


# Words, numbers with their units, strings, runs of blanks, or any other single byte.
TOKEN = re.compile(rb'[A-Za-z0-9_.:%@]+|"(?:[^"\\\n]|\\.)*"?|[ \t]+|.', re.DOTALL)

MUTATIONS = ["delete", "insert", "snippet", "duplicate", "swap", "replace", "delete line", "duplicate line",
             "swap lines", "indent line", "replace number", "replace word", "replace string", "replace token",
             "snippet at token", "move token", "delete token"]


def _kind_of(token: bytes) -> str:
    if token[:1].isdigit():
        return "number"
    if token[:1] == b'"':
        return "string"
    if token[:1].isalpha() or token[:1] in b"_@":
        return "word"
    return "blank" if not token.strip() else "other"


REPLACEMENTS = {"number": NUMBERS, "string": STRINGS, "word": WORDS}


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS))
    positions = st.integers(min_value=0, max_value=10**6)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(MUTATIONS))
        i, j = sorted((draw(positions) % (len(data) + 1), draw(positions) % (len(data) + 1)))
        if "token" in kind or kind.startswith("replace "):
            tokens = TOKEN.findall(data) or [b""]
            k, n = draw(positions) % len(tokens), draw(positions) % len(tokens)
            if kind.startswith("replace "):
                wanted = kind.removeprefix("replace ")
                same = [index for index, token in enumerate(tokens) if _kind_of(token) == wanted] or [k]
                k = same[k % len(same)]
                choices = SNIPPETS if wanted == "token" else REPLACEMENTS[wanted]
                tokens[k] = draw(st.sampled_from([*choices, tokens[n]]))
            elif kind == "snippet at token":
                tokens.insert(k, draw(st.sampled_from(SNIPPETS)))
            elif kind == "move token":
                tokens.insert(n, tokens.pop(k))
            else:
                del tokens[k]
            data = b"".join(tokens)
        elif kind == "delete":
            data = data[:i] + data[i + (j - i) % 20 :]
        elif kind == "insert":
            data = data[:i] + draw(st.binary(min_size=1, max_size=8)) + data[i:]
        elif kind == "snippet":
            data = data[:i] + draw(st.sampled_from(SNIPPETS)) + data[i:]
        elif kind == "duplicate":
            j = min(j, i + 200)
            data = data[:j] + data[i:j] + data[j:]
        elif kind == "swap" and j < len(data):
            data = data[:i] + data[j : j + 1] + data[i + 1 : j] + data[i : i + 1] + data[j + 1 :]
        elif kind == "replace" and i < len(data):
            data = data[:i] + draw(st.binary(min_size=1, max_size=1)) + data[i + 1 :]
        else:
            lines = data.split(b"\n")
            k, n = draw(positions) % len(lines), draw(positions) % len(lines)
            if kind == "delete line":
                del lines[k]
            elif kind == "duplicate line":
                lines.insert(k, lines[k])
            elif kind == "swap lines":
                lines[k], lines[n] = lines[n], lines[k]
            else:
                lines[k] = draw(st.sampled_from([b" ", b"  ", b"   ", b"\t", b" " * 64])) + lines[k]
            data = b"\n".join(lines)
    return data


def line_count(source: bytes | str) -> int:
    """Lines as the parser counts them: `\r\n`, `\r` and `\n` all end one."""
    if isinstance(source, bytes):
        return source.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    return source.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def assert_contract(source: bytes | str) -> None:
    """Parses, or fails with located diagnostics; nothing else may come out of `parse`."""
    try:
        journey = parse(source)
    except JourneySyntaxError as error:
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert 1 <= diagnostic.line <= line_count(source) + 1, (diagnostic, source)
            assert diagnostic.column >= 1, (diagnostic, source)
            assert diagnostic.message
            assert diagnostic.render()
        return
    assert isinstance(journey, m.Journey)
    assert journey.steps
    text = format_journey(journey)
    again = parse(text)
    assert again == journey
    assert repr(again) == repr(journey)
    assert format_journey(again) == text


FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("seed", SEEDS, ids=["sample", "kitchen_sink", *(p.name for p in EXAMPLES)])
def test_the_seeds_are_valid(seed: bytes) -> None:
    journey = parse(seed)
    assert parse(format_journey(journey)) == journey


@FUZZ
@given(mutants())
def test_mutated_journeys_parse_or_fail_cleanly(data: bytes) -> None:
    assert_contract(data)
    # The same text handed over as str, where surrogates can occur.
    try:
        text = data.decode("utf-8", "surrogatepass")  # encoded surrogates become raw ones
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")  # invalid bytes become lone surrogates
    assert_contract(text)


# Values at and past the limits, put where the grammar expects them: random mutation rarely
# lands them exactly there.
EXTREMES = {
    "number": [b"9" * 5000, b"9" * 4400 + b"d", b"1" * 1500 + b"w", b"1e999", b"1" * 400 + b".5",
               b"1" * 400 + b"%", b"25:00", b"0d"],
    "path": [b"not " * 700 + b"a", b"(" * 600 + b"a" + b")" * 600, b"-" * 900 + b"a", b"a or " * 600 + b"a",
             b"1 + " * 600 + b"1", b"[" * 600 + b"]" * 600, b"f(" * 400 + b")" * 400, b"not " * 90 + b"a"],
}


def _extreme_mutants(seed: bytes) -> list[bytes]:
    tokens = TOKEN.findall(seed)
    out = []
    for index, token in enumerate(tokens):
        kind = "path" if re.fullmatch(rb"[a-z_]+\.[a-z_.]+", token) else _kind_of(token)
        for replacement in EXTREMES.get(kind, []):
            out.append(b"".join([*tokens[:index], replacement, *tokens[index + 1 :]]))
    return out


@pytest.mark.parametrize("seed", SEEDS[:2], ids=["sample", "kitchen_sink"])
def test_extreme_values_in_every_position(seed: bytes) -> None:
    mutants = _extreme_mutants(seed)
    assert len(mutants) > 50
    for mutant in mutants:
        assert_contract(mutant)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    assert_contract(data)
    assert_contract(b'journey "x"\n  ' + data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_parses_or_fails_cleanly(text: str) -> None:
    assert_contract(text)
    assert_contract('journey "x"\n  audience ' + text + "\n  pass\n")


def test_threads_parsing_at_once_do_not_break_each_others_indentation() -> None:
    """The server and the engine parse from several threads; the indentation post-lexer keeps
    state while it runs, so a shared one once let lark's DedentError out of `parse`."""
    import threading

    failures: list[BaseException] = []

    def work() -> None:
        for _ in range(60):
            try:
                assert parse(SAMPLE).steps
                parse(SAMPLE.replace("    split", "   split"))
            except JourneySyntaxError:
                pass
            except BaseException as error:  # anything else is the bug
                failures.append(error)
                return

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
