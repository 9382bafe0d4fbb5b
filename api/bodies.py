"""Reading request bodies without trusting their size.

A body is refused with 413 as soon as it is known to be too large: from its Content-Length
before a byte is read, or, for a chunked body, the moment the bytes counted while streaming
pass the limit. Nothing larger than the limit is ever held in memory.

A client that goes away before its body is complete gets a 400 that no one reads: Starlette's
`ClientDisconnect` would reach uvicorn as an unhandled error and log a traceback for what is
an ordinary event (a load generator stopping, a producer timing out).
"""

from __future__ import annotations

import json
import math
import re
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .problems import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json", "text/plain")  # some Segment-compatible senders say text/plain
_GONE = "the client went away before the body was complete"


def declared_length(request: Request, limit: int) -> None:
    """Refuse a body whose declared length is over `limit`, before reading it."""
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise BadRequest("Content-Length is not a number", {"Content-Length": "must be an integer"}) from None
    if length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; at most {limit} are accepted here")


async def limited_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, refusing it once more than `limit` bytes have come."""
    declared_length(request, limit)
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted here")
            yield chunk
    except ClientDisconnect:
        raise BadRequest(_GONE, {"body": "incomplete"}) from None


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes. It takes the ASGI messages itself rather than
    going through `limited_chunks`: on the event-intake path, which reads one small body per
    request thousands of times a second, two async generators per request (Starlette's stream
    and ours, each registered with the event loop on first use) were a visible share of it.
    The body is consumed: `request.stream()` cannot be read again afterwards."""
    declared_length(request, limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise BadRequest(_GONE, {"body": "incomplete"})
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes, the most accepted here")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_json_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None or content_type == "application/json":  # what nearly every sender says
        return
    if content_type.split(";")[0].strip().lower() not in JSON_TYPES:
        raise UnsupportedMediaType(f"send JSON (application/json), not {content_type}")


# --------------------------------------------------------------------------- compressed bodies
# Senders compress to save bandwidth (rudder-sdk-python gzips every batch by default). The
# size limits are about memory, so they apply to the decoded body: a few kilobytes that would
# inflate to gigabytes (a zip bomb) are refused with 413 once the output passes the limit,
# without ever inflating more than that.

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_RAW_DEFLATE = -zlib.MAX_WBITS  # "deflate" as some senders mean it: no zlib header


def decoded(request: Request, body: bytes, limit: int) -> bytes:
    """`body` with its Content-Encoding undone, at most `limit` bytes once decoded."""
    encoding = request.headers.get("content-encoding")
    if encoding is None:
        return body
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none",
                                   {"Content-Encoding": "must be gzip, deflate or identity"})
    try:
        return _inflate(body, wbits, limit)
    except zlib.error:
        if encoding != "deflate":
            raise BadRequest(f"the body is not valid {encoding} data", {"body": f"is not {encoding}"}) from None
    try:
        return _inflate(body, _RAW_DEFLATE, limit)
    except zlib.error:
        raise BadRequest("the body is not valid deflate data", {"body": "is not deflate"}) from None


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"the body decodes to over {limit} bytes, the most accepted here")
    if not inflater.eof:
        raise BadRequest("the compressed body is truncated", {"body": "is truncated"})
    return out


# --------------------------------------------------------------------------- JSON we can store
# Python's json module accepts documents that nothing after it can handle: NaN and Infinity
# (and 1e999, which it reads as infinity) are not JSON, so a row holding one could not be read
# back by another client; a lone surrogate escape ("\ud83d") makes a str that UTF-8 cannot
# encode, so the database refuses it at commit; integers past Python's digit limit raise
# ValueError; and deep nesting exhausts the interpreter's stack (here, or in whatever walks the
# value later). Each is refused as bad input naming its field, per message where a batch holds
# several, so one bad message does not cost the others.
#
# Checking every value of every body would slow the intake path, so the walk runs only when
# the cheap signs say it may find something: the parser met a number it cannot store, the
# bytes hold a surrogate escape, or the brackets may nest deeper than MAX_DEPTH (`_may_nest_deeper`).

MAX_DEPTH = 64  # objects and arrays inside one another, counted from the value checked
MAX_PROBLEMS = 20  # named per value: enough to fix a body, bounded for a hostile one


class _Unstorable:
    """Stands in, while parsing, for a number the body holds but JSON storage cannot."""

    def __init__(self, why: str) -> None:
        self.why = why


_NON_FINITE = _Unstorable("must be a finite number (NaN and Infinity are not JSON)")
_MAX_DIGITS = sys.get_int_max_str_digits()  # past this, int() of a JSON number raises ValueError
_HUGE = _Unstorable(f"must be an integer of at most {_MAX_DIGITS} digits")


@dataclass(frozen=True)
class Parsed:
    value: Any
    suspect: bool  # whether `problems_in` may find something


class _Marked(Exception):
    """Raised by the fast decoder at the first number it cannot store: the body is read again
    by the marking decoder, which puts `_Unstorable` in its place."""


def _refuse_constant(name: str) -> Any:
    raise _Marked


def _refuse_non_finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 and a 400-digit literal are read as infinity
        raise _Marked
    return number


def _mark_constant(name: str) -> Any:
    return _NON_FINITE


def _mark_non_finite(text: str) -> Any:
    number = float(text)
    return number if math.isfinite(number) else _NON_FINITE


def _mark_int(text: str) -> Any:
    return int(text) if len(text.lstrip("-")) <= _MAX_DIGITS else _HUGE


# Built once: `json.loads` with hooks builds a decoder on every call, which costs more than
# the parse of a typical event.
_FAST = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_refuse_non_finite)
_MARKING = json.JSONDecoder(parse_constant=_mark_constant, parse_float=_mark_non_finite, parse_int=_mark_int)


def parse(body: bytes) -> Parsed:
    """Parse a JSON body (UTF-8, as RFC 8259 requires between systems); only what is not JSON
    at all is refused here (as a 400 naming `body`), while values that cannot be stored are
    marked for `problems_in` to name."""
    try:
        text = body.decode("utf-8")
        try:
            value = _FAST.decode(text)
            return Parsed(value, b"\\ud" in body or b"\\uD" in body or _may_nest_deeper(body))
        except _Marked:
            pass
        except ValueError as error:  # an integer past the digit limit; anything else is not JSON
            if "digits" not in str(error) or isinstance(error, json.JSONDecodeError):
                raise
        return Parsed(_MARKING.decode(text), True)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest("the body is not valid JSON", {"body": str(error)}) from None
    except RecursionError:
        raise BadRequest(f"the body nests objects and arrays too deeply (at most {MAX_DEPTH} levels)",
                         {"body": f"nested over {MAX_DEPTH} levels"}) from None


# For `_may_nest_deeper`: keep quotes and brackets, each bracket as `{` or `}` (in a body that
# parsed, every bracket closes its own kind, so one kind is enough to measure depth).
_BRACKETS = bytes.maketrans(b"[]", b"{}")
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"{}[]')


def _may_nest_deeper(body: bytes) -> bool:
    """Whether the objects and arrays of `body` (valid JSON: it parsed) may nest more than
    MAX_DEPTH levels: exact for any body that parsed (brackets inside strings do not count).

    Counting brackets is enough for a small body, as a call of a few kilobytes holds fewer
    than MAX_DEPTH of them. A batch of 100 holds hundreds of brackets at a depth of four, and
    the count alone sent every batch through the walk, which was then most of a batch's CPU.
    So a larger body gets its real depth, in C loops over bytes (a Python loop per byte would
    cost more than the walk): escaped backslashes, then escaped quotes, are dropped (in that
    order, so a run of backslashes pairs up as the parser reads it); the `"` left delimit the
    strings exactly (no UTF-8 multi-byte character holds an ASCII byte). When every string is
    empty of brackets, dropping each `""` leaves the structure alone; otherwise the strings are
    cut out (a string holding `][` must not pass for structure that closes one level and opens
    another). Then each pass drops the empty pairs `{}`, one level: `bytes.replace` scans its
    input, not its output, so `{{}}` loses only its inner pair per pass."""
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return False
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = body.translate(_BRACKETS, _NOT_STRUCTURE)
    structure = marks.replace(b'""', b"")
    if b'"' in structure:  # some string holds a bracket (quotes pair up only as strings then)
        structure = b"".join(marks.split(b'"')[::2])
    for _ in range(MAX_DEPTH):
        inner = structure.replace(b"{}", b"")
        if not inner:
            return False
        if len(inner) == len(structure):  # cannot happen for a body that parsed: stay on the safe side
            return True
        structure = inner
    return True


def problems_in(value: Any, path: str = "") -> dict[str, str]:
    """What in `value` cannot be stored, by field path (`properties.items[2].price`)."""
    found: dict[str, str] = {}
    for where, why in _walk(value, path):
        found.setdefault(where or "body", why)
        if len(found) >= MAX_PROBLEMS:
            break
    return found


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                yield where, f"nests objects and arrays over {MAX_DEPTH} levels deep"
                continue
            for key, member in reversed(item.items()):
                inner = _member(where, key)
                if not _encodable(key):
                    yield inner, "the name must be valid Unicode (no lone surrogate escapes)"
                stack.append((member, inner, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                yield where, f"nests objects and arrays over {MAX_DEPTH} levels deep"
                continue
            inside = where or "body"
            stack.extend((member, f"{inside}[{i}]", depth + 1) for i, member in reversed(list(enumerate(item))))
        elif isinstance(item, str):
            if not _encodable(item):
                yield where, "must be valid Unicode (no lone surrogate escapes such as \\ud83d)"
        elif isinstance(item, _Unstorable):
            yield where, item.why


_PLAIN_NAME = re.compile(r"[^.\[\]\s\"]+")


def _member(where: str, key: str) -> str:
    """The path of `key` inside `where`: dotted when the name reads plainly (`properties.price`),
    else quoted in brackets (`properties[""]`, `properties["a.b"]`), so that every path names
    one place; lone surrogates are shown as escapes, since the answer must be valid UTF-8."""
    if _PLAIN_NAME.fullmatch(key) and _encodable(key):
        return f"{where}.{key}" if where else key
    return f"{where or 'body'}[{json.dumps(key)}]"


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json(body: bytes) -> Any:
    """A JSON body, refused whole (naming each bad field) if anything in it cannot be stored."""
    parsed = parse(body)
    if parsed.suspect:
        problems = problems_in(parsed.value)
        if problems:
            raise BadRequest("the body holds values that cannot be stored", problems)
    return parsed.value


def json_object(body: bytes) -> dict[str, Any]:
    data = parse_json(body)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", {"body": "must be an object"})
    return data
