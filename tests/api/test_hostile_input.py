"""No input is a server error: every route of the app, on both backends, over real HTTP, gets
hostile path and query parameters and hostile bodies, and must answer below 500; a 4xx is
problem+json, and a 400 names each field at fault in `errors`.

The routes are read off the app and described by the OpenAPI document (whose parameter and
body property names the hostile values are put under), so a new route is covered the moment
it is added. Two passes: a fixed catalogue of inputs known to have broken something (deep
nesting, huge integers, NaN, lone surrogates, NUL, out-of-range times, ids past 64 bits,
non-UTF-8 CSV), each tried on every route, then Hypothesis mixing them with generated values.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import app as api_app
from api.app import create_app
from api.openapi import document
from api.problems import MEDIA_TYPE
from api.settings import Settings

from .conftest import STARTUP_POLLS, Server, free_socket

EXAMPLES_PER_OPERATION = 20
INGEST = {"track", "identify", "alias", "group", "page", "screen", "batch"}
HEADERS_NAMED = {"body", "Content-Length", "Content-Encoding"}  # what a 400 may name besides what was sent
VIP = '''journey "VIP"
  trigger api
  @hello send sms "hello {{ user.first_name | default('there') }}"
  @rest wait 1d
'''

# --------------------------------------------------------------------------- the catalogue

# Path segments and query values, as they go on the wire (already percent-encoded).
HOSTILE_PARAMS = [
    "", "0", "-1", "1.5", "1e3", "+1", "1_000", quote("١٢"), quote(" 1"), "9" * 20, "9" * 5000,
    str(2**31), str(2**63), "%00", "a%00b", "%ED%A0%80", "%FF%FE", "%C0%AF", quote("../x"), quote("é" * 200),
    "x" * 4000, "NaN", "Infinity", "null", "true", quote("0001-01-01T00:00:00+01:00"),
    quote("9999-12-31T23:59:59-01:00"), quote("<script>"), quote("'; DROP TABLE journeys; --"), "%0A", "%20",
]

_DEEP = "[" * 1000 + "]" * 1000
_HUGE_INT = "9" * 5000
# JSON values as text, so that what json.dumps cannot write (NaN, lone surrogates) can be sent.
HOSTILE_VALUES = [
    _DEEP, "[" * 100_000, '{"a":' * 1000 + "1" + "}" * 1000, _HUGE_INT, "-" + _HUGE_INT, "1" + "0" * 400, "1e999",
    "-1e999", "NaN", "Infinity", "-Infinity", '"\\ud800"', '"a\\udfffb"', '{"\\ud800": 1}', '"a\\u0000b"',
    '"\\u0000"', '""', '" "', "null", "true", "false", "0", "-1", "1.5", str(2**63), str(-(2**63) - 1), "[]", "{}",
    '[""]', '{"": ""}', '"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:59:59-01:00"', '"0000-00-00T00:00:00Z"',
    '"2024-02-30T00:00:00Z"', '"' + "x" * 3000 + '"', '"' + "\u00e9" * 800 + '"', '{"email": "\\u0000"}',
    '{"email": "' + "x" * 3000 + '"}', '{"traits": {"email": "\\u0000"}}', '[{"type": "track"}]',
]
# Whole bodies, for every route that reads one.
HOSTILE_BODIES = [
    b"", b" ", b"null", b"[]", b'"x"', b"0", b"{", b'{"a": }', b"\xff\xfe\x00", b"\xef\xbb\xbf{}", _DEEP.encode(),
    b"[" * 100_000, _HUGE_INT.encode(), b"NaN", b'{"a": 1, "a": 2}', b'{"\\ud800": 1}',
]
# CSV uploads (the coupon codes route), bytes as sent.
HOSTILE_CSV = [
    b"", b"code", b"\xef\xbb\xbfcode\n", b"code\nA\xff\n", b"\xff\xfe", b"code\nA,0001-01-01T00:00:00+01:00\n",
    b"code\nA,9999-12-31T23:59:59-01:00\n", b"code\nA,0000-01-01T00:00:00Z\n", b"code\nA,2023-02-29T00:00:00Z\n",
    b"code\nA,2026-04-01T00:00:00+25:00\n", b"code\n4\r5,x\n", b'code\n"A\n', b'code\n"' + b"a" * 200_000 + b'"\n',
    b"code\n" + b"A" * 100_000 + b"\n", "code\nA\ud800\n".encode("utf-8", "surrogatepass"), b"code\nA\x00\n",
    b"code\n,2026-01-01T00:00:00Z\n", b"code\nA,2026-01-01T00:00:00Z,x,y\n", b"code\n" + "\u3000A".encode() + b"\n",
    b"code\n[]\n", b"[]", b"5", b"null", b"code\r\n\r\n\r\n", b"code\nA,\n" * 3, b"\n" * 1000,
]


# --------------------------------------------------------------------------- the routes


@dataclass
class Operation:
    method: str
    path: str  # the template: /v1/journeys/{slug}/versions/{number}
    operation_id: str
    path_params: list[str]
    query_params: list[str]
    body_media: list[str]  # what the document says the body may be sent as
    body_fields: list[str]  # the body's property names, where it is an object
    key: str = field(default="admin")  # admin, write or none

    @property
    def csv(self) -> bool:
        return any(m != "application/json" for m in self.body_media)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _fields(schema: dict[str, Any], components: dict[str, Any]) -> list[str]:
    schema = _resolve(schema, components)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        names |= set(_fields(part, components))
    return sorted(names)


def operations() -> list[Operation]:
    """Every route of the app (the builder's, under its own Mount, aside), as the document
    describes it: a route missing from the document fails here (and in test_openapi)."""
    doc = document()
    components = doc["components"]["schemas"]
    found = []
    for route in create_app(Settings(database_url="sqlite://")).routes:
        if not isinstance(route, Route):
            continue
        path = re.sub(r":\w+}", "}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = doc["paths"][path][method.lower()]
            params = op.get("parameters", [])
            content = op.get("requestBody", {}).get("content", {})
            fields = sorted({f for media in content.values() for f in _fields(media["schema"], components)})
            key = "none" if op.get("security") is None else "write" if op["operationId"] in INGEST else "admin"
            found.append(Operation(method, path, op["operationId"], [p["name"] for p in params if p["in"] == "path"],
                                   [p["name"] for p in params if p["in"] == "query"], list(content), fields, key))
    return found


OPERATIONS = operations()


# --------------------------------------------------------------------------- the checks


@dataclass
class World:
    """A server with something in it, so that valid parameters reach past the 404s."""

    server: Server
    client: httpx.Client
    valid: dict[str, str]  # path parameter -> a value that exists

    def headers(self, op: Operation) -> dict[str, str]:
        secret = {"admin": self.server.admin, "write": self.server.write}.get(op.key)
        return {"Authorization": f"Bearer {secret}"} if secret else {}


@pytest.fixture
def world(server: Server) -> Iterator[World]:
    with server.client(server.admin) as client:
        assert client.post("/v1/journeys", json={"source": VIP, "slug": "vip"}).status_code == 201
        assert client.post("/v1/journeys/vip/publish").status_code == 200
        assert client.post("/v1/journeys/vip/entries", json={"userId": "u1"}).status_code == 200
        assert client.post("/v1/coupon-pools", json={"name": "P"}).status_code == 201
        (profile,) = client.get("/v1/profiles", params={"kind": "user_id", "value": "u1"}).json()["profiles"]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield World(server, client, {"slug": "vip", "number": "1", "profile_id": str(profile["id"]), "name": "P"})


def url(op: Operation, path: dict[str, str], query: dict[str, str]) -> str:
    out = op.path
    for name, value in path.items():
        out = out.replace("{" + name + "}", value)
    return out + ("?" + "&".join(f"{quote(k, safe='')}={v}" for k, v in query.items()) if query else "")


def problem(response: httpx.Response, named_ok: set[str]) -> str | None:
    """What is wrong with the answer, if anything."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return None
    if response.headers.get("content-type") != MEDIA_TYPE:
        return f"{response.status_code} as {response.headers.get('content-type')}, not problem+json"
    body = response.json()
    if response.status_code != 400:
        return None
    errors = body.get("errors")
    if not errors or not all(isinstance(e.get("field"), str) and e["field"] and isinstance(e.get("detail"), str)
                             for e in errors):
        return f"400 without errors[].field naming what is wrong: {response.text[:300]}"
    # A field's path starts with the request's field (`batch[2].userId`), or with a position in
    # a body that is an array (`[0][1]`).
    unnamed = [e["field"] for e in errors if not e["field"].startswith("[") and not any(
        e["field"] == name or e["field"].startswith((name + ".", name + "[")) for name in named_ok)]
    if unnamed:
        return f"400 naming {unnamed}, which is no field of the request: {response.text[:300]}"
    return None


def call(world: World, op: Operation, path: dict[str, str], query: dict[str, str], body: bytes | None,
         content_type: str | None = None) -> str | None:
    headers = world.headers(op)
    if body is not None:
        headers["Content-Type"] = content_type or ("text/csv" if op.csv else "application/json")
    target = url(op, path, query)
    try:
        response = world.client.request(op.method, target, content=body, headers=headers)
    except httpx.TransportError:  # after a 500 the server closes the connection: once more, on a new one
        try:
            response = world.client.request(op.method, target, content=body, headers=headers)
        except httpx.TransportError as error:  # dropped twice: as bad as a 500
            return f"{op.method} {target[:200]} body={(body or b'')[:200]!r}: {type(error).__name__}"
    named_ok = {*op.path_params, *op.query_params, *op.body_fields, *query, *_top_level_keys(body), *HEADERS_NAMED}
    found = problem(response, named_ok)
    return f"{op.method} {target[:200]} body={(body or b'')[:200]!r}: {found}" if found else None


def _top_level_keys(body: bytes | None) -> set[str]:
    """The body's member names, also as a 400 spells one that is no valid Unicode ("\\ud800")."""
    try:
        value = json.loads(body or b"null", parse_int=lambda text: 0)
    except (ValueError, RecursionError):
        return {"extra", "type"}  # what the catalogue and the strategies put in
    if not isinstance(value, dict):
        return set()
    return {str(k) for k in value} | {str(k).encode("utf-8", "backslashreplace").decode() for k in value}


def valid_path(world: World, op: Operation) -> dict[str, str]:
    return {name: world.valid[name] for name in op.path_params}


def bodies_for(op: Operation) -> Iterator[bytes]:
    """The catalogue's bodies for one operation: whole bodies; each hostile value under every
    field at once; and the sharpest values under each field alone, beside valid others (so
    the field's own check is reached, not a required one before it)."""
    if op.csv:
        yield from HOSTILE_CSV
        return
    yield from HOSTILE_BODIES
    names = [*op.body_fields, "extra"]
    if op.operation_id == "batch":
        names = [*_MESSAGE_FIELDS, "extra"]
    for value in HOSTILE_VALUES:
        yield _wrapped(op, {name: value for name in names})
    for value in SHARP_VALUES:
        for name in names:
            yield _wrapped(op, {**_VALID, name: value})
    if op.operation_id == "batch":  # beside the messages: the context they share
        for value in [*HOSTILE_VALUES, '{"x": "\\ud800"}', '{"\\ud800": 1}', '{"x": NaN}', '{"x": ' + _DEEP + "}"]:
            yield f'{{"batch": [{{"type": "track", "userId": "u", "event": "e"}}], "context": {value}}}'.encode()


SHARP_VALUES = [_DEEP, _HUGE_INT, "NaN", "1e999", '"\\ud800"', '"a\\u0000b"', '""', "[]", "{}", "5",
                '"' + "x" * 3000 + '"', '"0001-01-01T00:00:00+01:00"', '"9999-12-31T23:59:59-01:00"']
_MESSAGE_FIELDS = ["type", "userId", "anonymousId", "previousId", "groupId", "event", "messageId", "timestamp",
                   "properties", "traits", "context", "name", "category"]
_VALID = {name: json.dumps(value) for name, value in {
    "type": "track", "userId": "u", "event": "e", "previousId": "p", "groupId": "g", "source": "x",
    "name": "x"}.items()}


def _wrapped(op: Operation, members: dict[str, str]) -> bytes:
    body = "{" + ",".join(f"{json.dumps(k)}: {v}" for k, v in members.items()) + "}"
    return (f'{{"batch": [{body}]}}' if op.operation_id == "batch" else body).encode()


# --------------------------------------------------------------------------- the tests


def test_every_route_is_covered() -> None:
    documented = {(path, method) for path, ops in document()["paths"].items() for method in ops}
    assert {(op.path, op.method.lower()) for op in OPERATIONS} == documented


def test_the_catalogue_of_hostile_inputs_is_refused_as_4xx_naming_the_field(world: World) -> None:
    failures = []
    for op in OPERATIONS:
        path = valid_path(world, op)
        for name in op.path_params:
            for value in HOSTILE_PARAMS:
                failures.append(call(world, op, {**path, name: value}, {}, None))
        for name in op.query_params:
            for value in HOSTILE_PARAMS:
                failures.append(call(world, op, path, {name: value}, None))
        for value in ["%00", "%ED%A0%80", "9" * 5000]:  # a parameter no route reads is ignored
            failures.append(call(world, op, path, {"extra": value}, None))
        if op.method in ("POST", "PUT"):
            for body in bodies_for(op):
                failures.append(call(world, op, path, {}, body))
    found = [f for f in failures if f]
    assert not found, f"{len(found)} hostile inputs were not a 4xx naming the field:\n" + "\n".join(found)


# Journey text the language reads and the engine could not run, or that nests past what the
# compiler's own recursion can walk.
UNRUNNABLE = {
    "wait": 'journey "w"\n  trigger api\n  wait 99999999999999d\n',
    "window": 'journey "w"\n  trigger api\n  goal "g" on event "p" within 99999999999999999d\n  wait 1d\n',
    "every": 'journey "w"\n  trigger api\n  entry once every 999999999999d\n  wait 1d\n',
    "cap": 'journey "w"\n  trigger api\n  frequency cap 1 message per 99999999999999d\n  send sms "x"\n',
    "template": 'journey "w"\n  trigger api\n  send sms "{{ ' + "(" * 3000 + "1" + ")" * 3000 + ' }}"\n',
    "blocks": 'journey "w"\n  trigger api\n  send sms "' + "{% if true %}" * 500 + "{% endif %}" * 500 + '"\n',
    "label": 'journey "w"\n  trigger api\n  @' + "a" * 3000 + " wait 1d\n",
    "until": 'journey "w"\n  trigger api\n  wait until "9999-12-31T23:59:59-01:00"\n',
}


def test_journey_text_the_engine_cannot_run_is_refused_before_it_goes_live(world: World) -> None:
    """Problems of the text (422 on publish), never a 500 on create, publish or entering a user.
    (A 10**12-day wait was published, and the first user to reach it was a 500.)"""
    failures = []
    with world.server.client(world.server.admin) as client:
        for slug, source in UNRUNNABLE.items():
            answers = [client.post("/v1/journeys", json={"source": source, "slug": slug}),
                       client.post("/v1/journeys", json={"source": source}),
                       client.post(f"/v1/journeys/{slug}/publish"),
                       client.post(f"/v1/journeys/{slug}/entries", json={"userId": "u1"})]
            failures += [f"{slug}: {r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}"
                         for r in answers if r.status_code >= 500]
            if answers[2].status_code != 422:
                failures.append(f"{slug}: published ({answers[2].status_code}), though the engine cannot run it")
        long_name = 'journey "' + "n" * 500_000 + '"\n  trigger api\n  wait 1d\n'
        named = client.post("/v1/journeys", json={"source": long_name})
    assert not failures, "\n".join(failures)
    assert named.status_code == 201 and named.json()["slug"] == "n" * 100  # a slug fits an index entry


def _json_value() -> st.SearchStrategy[str]:
    scalars = st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers().map(str),
                        st.floats(allow_nan=False, allow_infinity=False).map(repr),
                        st.text().map(json.dumps), st.text(max_size=3).map(lambda t: json.dumps(t + "\x00")))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}")), max_leaves=6)


def _body(op: Operation) -> st.SearchStrategy[bytes | None]:
    if op.method not in ("POST", "PUT"):
        return st.none()
    if op.csv:
        line = st.one_of(st.text(max_size=70),
                         st.sampled_from(["A", "A,2026-01-01T00:00:00Z", "A,0001-01-01T00:00:00+01:00"]))
        text = st.lists(line, max_size=5).map(lambda lines: "\n".join(["code", *lines]).encode())
        return st.one_of(st.sampled_from(HOSTILE_CSV), text, st.binary(max_size=200))
    members = st.dictionaries(st.sampled_from([*op.body_fields, "type", "extra"]), _json_value(), max_size=6)
    objects = members.map(lambda d: ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}").encode())
    if op.operation_id == "batch":
        objects = st.builds(lambda items, context: b'{"batch":[' + b",".join(items) + b"]" + context + b"}",
                            st.lists(objects, min_size=1, max_size=4),
                            st.one_of(st.just(b""), _json_value().map(lambda v: b',"context":' + v.encode())))
    return st.one_of(objects, st.sampled_from(HOSTILE_BODIES), _json_value().map(str.encode))


def _generated(world: World, op: Operation) -> Any:
    param = st.one_of(st.sampled_from(HOSTILE_PARAMS), st.text(max_size=30).map(lambda t: quote(t, safe="")))
    path = st.fixed_dictionaries({n: st.one_of(st.just(world.valid[n]), param) for n in op.path_params})
    query = st.dictionaries(st.sampled_from([*op.query_params, "extra"]), param, max_size=3)

    @given(path=path, query=query, body=_body(op))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    def answers(path: dict[str, str], query: dict[str, str], body: bytes | None) -> None:
        found = call(world, op, path, query, body)
        assert found is None, found

    return answers


def test_generated_hostile_inputs_are_refused_as_4xx_naming_the_field(world: World) -> None:
    """Without shrinking (a minimal example costs hundreds of requests), each operation's
    first failure is reported as found; all operations are tried."""
    failures = []
    for op in OPERATIONS:
        try:
            _generated(world, op)()
        except Exception as error:  # every operation is tried, and all failures listed
            failures.append(str(error).splitlines()[0])
    assert not failures, "\n".join(failures)


def test_an_unexpected_error_is_a_problem_500_without_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """The last resort, for whatever a route fails to refuse as a Problem: a route that raises,
    added to the real app, served by uvicorn (no lifespan: the route needs no services)."""
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret internals")

    app = create_app(Settings(database_url="sqlite://"))
    app.router.routes.insert(0, Route("/broken", broken))
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(STARTUP_POLLS):
        if server.started:
            break
        time.sleep(0.01)
    host, port = sock.getsockname()
    try:
        with caplog.at_level(logging.ERROR, logger=api_app.log.name):
            response = httpx.get(f"http://{host}:{port}/broken")
    finally:
        server.should_exit = True
        thread.join()
    assert response.status_code == 500
    assert response.headers["content-type"] == MEDIA_TYPE
    assert response.json()["status"] == 500 and "secret" not in response.text and "Traceback" not in response.text
    (record,) = [r for r in caplog.records if r.name == api_app.log.name]
    assert record.exc_info is not None and "GET /broken" in record.getMessage()
