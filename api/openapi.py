"""The OpenAPI 3.1 document served at /openapi.json, built by hand next to the routes it
describes. `tests/api/test_openapi.py` checks that it lists exactly the app's routes, and
schemathesis checks every answer against it."""

from __future__ import annotations

from typing import Any

from engine.messages import EARLIEST, IDENTITY_TRAITS, LATEST, MAX_ID_LENGTH, MAX_SAFE_INTEGER, MESSAGE_TYPES
from storage.coupons import UPLOAD_PATTERN
from storage.tables import CODES_PER_USER

from .routes import _guard
from .routes.coupons import CSV_TYPES, POOL_NAME

JSON = "application/json"
PROBLEM = "application/problem+json"
SLUG_PATTERN = _guard.SLUG.pattern
NO_NUL = "^[^\\u0000]*$"  # PostgreSQL text cannot hold NUL, so no text field takes one

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, BOOLEAN, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
OBJECT: Schema = {"type": "object"}
TIME = {"type": "string", "format": "date-time"}
TEXT = {"type": "string", "pattern": NO_NUL}
CODES_PER_USER_SCHEMA: Schema = {
    "type": "string", "enum": list(CODES_PER_USER),
    "description": "How many codes of the pool one person may hold. `one`: a claim for someone who already "
                   "holds a code of the pool (from any run of any journey) gives that same code again. "
                   "`unlimited`: every claim draws a new code"}


def _timestamp_pattern() -> str:
    """A message's timestamp as the intake reads it (ISO 8601, an offset or none for UTC), in
    the years it takes (EARLIEST to LATEST, a year short at each end so that no offset takes
    it out), on days that exist. Written out, not `format: date-time`, which allows years 1 to
    9999 that the intake refuses."""
    first, last = EARLIEST.year + 1, LATEST.year - 2
    assert (first, last) == (1901, 2998), "the year pattern below spells out 1901 to 2998"
    year = "(?:190[1-9]|19[1-9][0-9]|2[0-9][0-8][0-9]|2[0-9]9[0-8]|2[0-8]99)"
    leap = "(?:19(?:0[48]|[2468][048]|[13579][26])|2[0-9](?:0[48]|[2468][048]|[13579][26])|2[048]00)"
    month_day = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                 "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
    return (f"^(?:{year}-{month_day}|{leap}-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9]"
            "(?::[0-5][0-9](?:\\.[0-9]{1,6})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$")


# An id or name as the intake reads it: text of at most MAX_ID_LENGTH characters (they are
# kept in indexed columns), or a whole number within a double's exact range, read as its
# decimal text (JSON Schema's `integer` includes 250.0, which the intake reads as "250");
# null or "" is absent.
ID: Schema = {"type": ["string", "integer", "null"], "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL,
              "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER}
GIVEN_ID: Schema = {"type": ["string", "integer"], "minLength": 1}  # an ID that is present
MAYBE_OBJECT: Schema = {"type": ["object", "null"]}  # null is read as {}

def _message(kind: str, typed: bool = False) -> Schema:
    """What the intake takes as one message of `kind` (engine.messages.parse_message), spelled
    out flat: schemathesis walks nested allOf and $ref chains recursively, and a batch of them
    took it past Python's recursion limit. `typed`: in a batch, where `type` says the kind.

    Every text field is an ID; properties, traits and context are objects or null. Anywhere in
    a body, NaN, Infinity, integers of over 4,300 digits, lone surrogate escapes and nesting
    deeper than 64 are refused too, which JSON Schema cannot say."""
    identity_traits: Schema = {t: {"pattern": NO_NUL, **({"maxLength": MAX_ID_LENGTH} if kind == "identify" else {})}
                               for t in IDENTITY_TRAITS}
    properties: Schema = {
        "messageId": {**ID, "description": "Repeats are dropped; derived from the content when absent"},
        "userId": ID, "anonymousId": ID, "previousId": ID, "groupId": ID, "event": ID,
        "timestamp": {"type": ["string", "null"], "pattern": _timestamp_pattern(),
                      "description": f"ISO 8601, from {EARLIEST.year} to {LATEST.year - 1}; UTC without an offset"},
        "properties": MAYBE_OBJECT, "context": MAYBE_OBJECT,
        "traits": {"type": ["object", "null"], "properties": identity_traits},
    }
    required = {"track": ["event"], "alias": ["userId", "previousId"], "group": ["groupId"]}.get(kind, [])
    properties |= {name: {**ID, **GIVEN_ID} for name in required}
    schema: Schema = {"type": "object", "properties": properties, "required": required}
    if kind in ("page", "screen"):
        noun = kind.capitalize()
        # The event is named after the page; an `event` sent along is checked as text and dropped.
        dropped = {k: v for k, v in ID.items() if k != "pattern"}  # dropped unread: a NUL in it is harmless
        properties |= {"name": ID, "category": ID, "event": dropped}
        schema["description"] = f'An event named "Viewed <category> <name> {noun}" ("Loaded a {noun}" without either)'
    if kind != "alias":
        schema["anyOf"] = [{"required": [name], "properties": {name: GIVEN_ID}} for name in ("userId", "anonymousId")]
    if kind == "identify":  # without traits, the traits are context.traits
        schema["if"] = {"required": ["traits"], "properties": {"traits": {"type": "object", "minProperties": 1}}}
        schema["else"] = {"properties": {"context": {"type": ["object", "null"], "properties": {
            "traits": {"type": ["object", "null"], "properties": identity_traits}}}}}
    if typed:
        properties["type"] = {"const": kind}
        schema["required"] = [*required, "type"]
    return schema


SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail", "instance", "code", "message"],
        "properties": {
            "type": STRING, "title": STRING, "status": INTEGER, "detail": STRING, "instance": STRING,
            "code": {"type": "string", "description": "The problem's kind (for Segment's and RudderStack's SDKs)"},
            "message": {"type": "string", "description": "The detail again, where those SDKs read it"},
            "errors": _array({"type": "object", "required": ["field", "detail"],
                              "properties": {"field": STRING, "detail": STRING}}),
            "diagnostics": _array(_ref("Diagnostic")),
        },
    },
    "Diagnostic": {
        "type": "object",
        "required": ["line", "column", "message"],
        "properties": {"line": INTEGER, "column": INTEGER, "message": STRING, "hint": _nullable(STRING)},
    },
    **{kind.capitalize(): _message(kind) for kind in MESSAGE_TYPES},
    "BatchMessage": {"oneOf": [_message(kind, typed=True) for kind in MESSAGE_TYPES]},
    "Accepted": {"type": "object", "required": ["success", "accepted"], "properties": {
        "success": {"const": True}, "accepted": {"type": "integer", "minimum": 1},
        "rejected": _array({"type": "object", "required": ["index", "errors"], "properties": {
            "index": {"type": "integer", "minimum": 0},
            "errors": _array({"type": "object", "required": ["field", "detail"],
                              "properties": {"field": STRING, "detail": STRING}})}})}},
    "JourneySummary": {
        "type": "object",
        "required": ["slug", "name", "status", "live_version", "draft_version"],
        "properties": {"slug": STRING, "name": STRING,
                       "status": {"type": "string", "enum": ["draft", "live", "paused", "archived"]},
                       "live_version": _nullable(INTEGER), "draft_version": _nullable(INTEGER)},
    },
    "VersionInfo": {
        "type": "object",
        "required": ["version", "id", "draft", "live", "created_at", "published_at", "published_by"],
        "properties": {"version": INTEGER, "id": INTEGER, "draft": BOOLEAN, "live": BOOLEAN,
                       "created_at": TIME, "published_at": _nullable(TIME),
                       "published_by": {"type": ["string", "null"],
                                        "description": "user:<builder user> or key:<API key name>"}},
    },
    "Version": {
        "allOf": [_ref("VersionInfo"), {
            "type": "object",
            "required": ["source", "graph", "errors", "valid"],
            "properties": {"source": STRING, "graph": _nullable(OBJECT), "errors": _array(_ref("Diagnostic")),
                           "valid": BOOLEAN},
        }],
    },
    "Journey": {
        "allOf": [_ref("JourneySummary"), {
            "type": "object", "required": ["version"], "properties": {"version": _nullable(_ref("Version"))},
        }],
    },
    "Profile": {
        "type": "object",
        "required": ["id", "traits", "tags", "identities"],
        "properties": {
            "id": INTEGER, "traits": OBJECT, "tags": _array(STRING), "timezone": _nullable(STRING),
            "identities": _array({"type": "object", "required": ["kind", "value"],
                                  "properties": {"kind": STRING, "value": STRING}}),
            "created_at": TIME, "updated_at": TIME,
        },
    },
    "ProfileDetail": {
        "allOf": [_ref("Profile"), {
            "type": "object",
            "required": ["runs", "deliveries", "merged_from"],
            "properties": {
                "merged_from": _nullable(INTEGER),
                "runs": _array({"type": "object", "required": ["id", "journey", "version", "state", "step"],
                                "properties": {"id": INTEGER, "journey": STRING, "version": INTEGER, "state": STRING,
                                               "step": _nullable(STRING), "entered_at": TIME,
                                               "updated_at": TIME, "wake_at": _nullable(TIME),
                                               "split_arms": OBJECT}}),
                "deliveries": _array({"type": "object", "required": ["id", "channel", "status"],
                                      "properties": {"id": INTEGER, "journey": _nullable(STRING),
                                                     "step": _nullable(STRING), "channel": STRING,
                                                     "status": STRING, "send_at": TIME, "created_at": TIME,
                                                     "payload": OBJECT, "reason": _nullable(STRING)}}),
            },
        }],
    },
    "Analytics": {
        "type": "object",
        "required": ["slug", "version", "granularity", "steps", "splits"],
        "properties": {
            "slug": STRING, "version": INTEGER, "granularity": {"type": "string", "enum": ["hour", "day"]},
            "steps": _array({"type": "object", "required": ["step", "waiting", "totals", "series"],
                             "properties": {"step": STRING, "waiting": INTEGER,
                                            "totals": {"type": "object", "additionalProperties": INTEGER,
                                                       "description": "All-time counts. A step: entered, "
                                                       "exited (left the journey there), converted (reached a "
                                                       "goal there), suppressed, cancelled. The journey: entered, "
                                                       "exited, "
                                                       "completed, converted (all goals), converted:<goal>"},
                                            "series": _array({"type": "object", "required": ["bucket"],
                                                              "properties": {"bucket": TIME},
                                                              "additionalProperties": True})}}),
            "splits": _array({"type": "object", "required": ["step", "arms"], "properties": {
                "step": STRING, "name": _nullable(STRING),
                "arms": _array({"type": "object",
                                "required": ["arm", "control", "entered", "converted", "conversion_rate", "ci95"],
                                "properties": {"arm": STRING, "control": BOOLEAN, "percent": _nullable(NUMBER),
                                               "entered": INTEGER, "converted": INTEGER,
                                               "conversion_rate": _nullable(NUMBER),
                                               "ci95": {"type": "array", "items": NUMBER,
                                                        "minItems": 2, "maxItems": 2}}}),
            }}),
        },
    },
    "CouponPool": {"type": "object",
                   "required": ["name", "codes_per_user", "total", "issued", "redeemed", "expired", "available"],
                   "properties": {"name": STRING, "codes_per_user": CODES_PER_USER_SCHEMA, "total": INTEGER,
                                  "issued": INTEGER, "redeemed": INTEGER, "expired": INTEGER, "available": INTEGER,
                                  "added": INTEGER, "duplicates": INTEGER}},
}

WRITE: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}, {"signature": []}]
ADMIN = WRITE  # the same schemes; the key's kind decides (403 for a write key)
# A streamed body cannot be checked against a signature before it is used: a key it must be.
STREAMING: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}]


def _problems(*codes: int) -> dict[str, Any]:
    titles = {400: "Invalid input, each bad field named", 401: "No, unknown or revoked key; bad signature",
              403: "A write key on an admin route", 404: "Not found", 405: "Method not allowed",
              409: "Not possible in the current state", 413: "Body or batch too large",
              415: "Wrong media type", 422: "Journey text with problems", 503: "Try again"}
    return {str(c): {"description": titles[c], "content": {PROBLEM: {"schema": _ref("Problem")}}} for c in codes}


def _ok(code: int, schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {JSON: {"schema": schema}}}}


def _body(schema: Schema, *media: str) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": schema} for m in media or (JSON,)}}


def _id(name: str, maximum: int) -> Schema:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": maximum}}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string", "pattern": SLUG_PATTERN}}
POOL = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": POOL_NAME.pattern}}
# A signed request's body is read (up to its limit) to check the signature, whatever the route.
AUTH_ERRORS = (400, 401, 403, 413)


def _op(op_id: str, summary: str, responses: dict[str, Any], security: Any = ADMIN,
        parameters: list[Schema] | None = None, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = ()) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {**responses, **_problems(*sorted(set(errors) | set(AUTH_ERRORS if security
                                                                                             else ())))}}
    if security is not None:
        op["security"] = security
    if parameters:
        op["parameters"] = parameters
    if body:
        op["requestBody"] = body
    return op


def _ingest(op_id: str, summary: str, schema: Schema) -> dict[str, Any]:
    return {"post": _op(op_id, summary, _ok(200, _ref("Accepted"), "Stored durably"), WRITE, body=_body(schema),
                        errors=(413, 415, 503))}


def _status(action: str) -> dict[str, Any]:
    schema = {"type": "object", "required": ["slug", "status"], "properties": {"slug": STRING, "status": STRING}}
    return {"post": _op(f"{action}Journey", f"{action.capitalize()} a journey", _ok(200, schema), parameters=[SLUG],
                        errors=(404, 409))}


def document() -> dict[str, Any]:
    journey_body = {"type": "object", "required": ["source"],
                    "properties": {"source": TEXT, "slug": {"type": ["string", "null"], "pattern": SLUG_PATTERN}}}
    user_id = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL}
    public: list[dict[str, list[str]]] = []
    paths: dict[str, Any] = {
        "/v1/track": _ingest("track", "Record an event", _ref("Track")),
        "/v1/identify": _ingest("identify", "Attach traits and identities to a person", _ref("Identify")),
        "/v1/alias": _ingest("alias", "Say two ids are one person", _ref("Alias")),
        "/v1/group": _ingest("group", "Say which group a person belongs to, and describe the group", _ref("Group")),
        "/v1/page": _ingest("page", "Record a page view (an event named after the page)", _ref("Page")),
        "/v1/screen": _ingest("screen", "Record a screen view (an event named after the screen)", _ref("Screen")),
        "/v1/batch": _ingest("batch", "Several messages in one call; the bad ones are named in `rejected`, and "
                             "only a batch with no good message is refused", {
                                 "type": "object", "required": ["batch"],
                                 "properties": {"batch": {"type": "array", "minItems": 1,
                                                          "contains": _ref("BatchMessage"),
                                                          "description": "At least one good message"},
                                                "context": {**MAYBE_OBJECT,
                                                            "description": "For messages without their own"}}}),
        "/v1/journeys": {
            "get": _op("listJourneys", "List journeys",
                       _ok(200, {"type": "object", "required": ["journeys"],
                                 "properties": {"journeys": _array(_ref("JourneySummary"))}})),
            "post": _op("createJourney", "Create a journey (its first draft) from DSL text",
                        _ok(201, _ref("Journey"), "Created"), body=_body(journey_body), errors=(409, 413, 415, 422)),
        },
        "/v1/journeys/{slug}": {"get": _op("readJourney", "A journey with its draft (or live) version: text, "
                                           "compiled graph, problems", _ok(200, _ref("Journey")),
                                           parameters=[SLUG], errors=(404,))},
        "/v1/journeys/{slug}/draft": {"put": _op(
            "updateDraft", "Write the journey's draft", _ok(200, _ref("Version")), parameters=[SLUG],
            body=_body({"type": "object", "required": ["source"], "properties": {"source": TEXT}}),
            errors=(404, 409, 413, 415))},
        "/v1/journeys/{slug}/publish": {"post": _op(
            "publishJourney", "Publish the draft as the new live version", _ok(200, _ref("Journey")),
            parameters=[SLUG], errors=(404, 409, 422))},
        "/v1/journeys/{slug}/pause": _status("pause"),
        "/v1/journeys/{slug}/resume": _status("resume"),
        "/v1/journeys/{slug}/archive": _status("archive"),
        "/v1/journeys/{slug}/versions": {"get": _op(
            "listVersions", "Every version, drafts included",
            _ok(200, {"type": "object", "required": ["versions"],
                      "properties": {"versions": _array(_ref("VersionInfo"))}}), parameters=[SLUG], errors=(404,))},
        "/v1/journeys/{slug}/versions/{number}": {"get": _op(
            "readVersion", "One version", _ok(200, _ref("Version")),
            parameters=[SLUG, _id("number", _guard.MAX_ID)], errors=(404,))},
        "/v1/journeys/{slug}/diff": {"get": _op(
            "diffVersions", "Unified diff of two versions' texts",
            _ok(200, {"type": "object", "required": ["from", "to", "diff"],
                      "properties": {"from": INTEGER, "to": INTEGER, "diff": STRING}}),
            parameters=[SLUG, *[{"name": n, "in": "query", "required": True,
                                 "schema": {"type": "integer", "minimum": 1, "maximum": _guard.MAX_ID}}
                                for n in ("from", "to")]], errors=(404,))},
        "/v1/journeys/{slug}/entries": {"post": _op(
            "enterUser", "Enter a user into a live journey with `trigger api`",
            _ok(200, {"type": "object", "required": ["slug", "entered"],
                      "properties": {"slug": STRING, "entered": BOOLEAN}}),
            parameters=[SLUG], errors=(404, 409, 413, 415),
            body=_body({"type": "object", "properties": {
                "userId": {"type": ["string", "null"], "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL},
                "anonymousId": {"type": ["string", "null"], "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL},
                "identities": {"type": ["object", "null"], "propertyNames": {"enum": list(IDENTITY_TRAITS)},
                               "additionalProperties": user_id}},
                "anyOf": [{"required": ["userId"], "properties": {"userId": {"type": "string", "minLength": 1}}},
                          {"required": ["anonymousId"],
                           "properties": {"anonymousId": {"type": "string", "minLength": 1}}},
                          {"required": ["identities"], "properties": {"identities": {"type": "object",
                                                                                     "minProperties": 1}}}],
                "description": "Name the user: a non-empty userId, anonymousId or identities"}))},
        "/v1/journeys/{slug}/analytics": {"get": _op(
            "journeyAnalytics", "Counts per step over time; split arms' conversion with 95% intervals",
            _ok(200, _ref("Analytics")), errors=(404,),
            parameters=[SLUG, {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                             "maximum": _guard.MAX_ID}},
                        {"name": "granularity", "in": "query", "schema": {"type": "string",
                                                                          "enum": ["hour", "day"]}}])},
        "/v1/profiles": {"get": _op(
            "searchProfiles", "Find the profile that holds an identity",
            _ok(200, {"type": "object", "required": ["profiles"], "properties": {"profiles": _array(_ref("Profile"))}}),
            parameters=[{"name": n, "in": "query", "required": True,
                         "schema": {"type": "string", "minLength": 1, "pattern": NO_NUL}} for n in ("kind", "value")])},
        "/v1/profiles/{profile_id}": {"get": _op(
            "readProfile", "A profile: traits, identities, tags, journey runs, deliveries",
            _ok(200, _ref("ProfileDetail")), errors=(404,),
            parameters=[_id("profile_id", _guard.MAX_BIG_ID)])},
        "/v1/coupon-pools": {
            "get": _op("listCouponPools", "Every coupon pool with its setting and stock",
                       _ok(200, {"type": "object", "required": ["pools"],
                                 "properties": {"pools": _array(_ref("CouponPool"))}})),
            "post": _op(
                "createCouponPool", "Create a coupon pool", _ok(201, _ref("CouponPool"), "Created"),
                body=_body({"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string", "pattern": POOL_NAME.pattern},
                                           "codes_per_user": {**CODES_PER_USER_SCHEMA, "default": "one"}}}),
                errors=(409, 413, 415)),
        },
        "/v1/coupon-pools/{name}": {
            "get": _op("couponStock", "A pool's setting and stock", _ok(200, _ref("CouponPool")), parameters=[POOL],
                       errors=(404,)),
            "patch": _op("changeCouponPool", "Change a pool's setting", _ok(200, _ref("CouponPool")),
                         parameters=[POOL], errors=(404, 413, 415),
                         body=_body({"type": "object", "required": ["codes_per_user"],
                                     "properties": {"codes_per_user": CODES_PER_USER_SCHEMA}})),
        },
        "/v1/coupon-pools/{name}/codes": {"post": _op(
            "uploadCodes", "Upload codes, one a line (CSV, streamed)", _ok(200, _ref("CouponPool")),
            STREAMING, parameters=[POOL], errors=(404, 413, 415), body=_body({
                "type": "string", "pattern": UPLOAD_PATTERN,
                "description": "UTF-8: the header `code` or `code,expires_at`, then a code a line (1 to 64 "
                               "printable characters: no space, comma or quote), optionally followed by "
                               ",expires_at (YYYY-MM-DDTHH:MM[:SS[.ffffff]] and Z or an offset, 1900 to 9998). "
                               "All rows are added or none; a code the pool has is skipped"}, *CSV_TYPES))},
        "/healthz": {"get": _op("healthz", "The process answers",
                                _ok(200, {"type": "object", "properties": {"status": STRING}}), public)},
        "/readyz": {"get": _op("readyz", "The database answers",
                               _ok(200, {"type": "object", "properties": {"status": STRING, "database": STRING}}),
                               public, errors=(503,))},
        "/metrics": {"get": _op("metrics", "Prometheus metrics", {"200": {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": STRING}}}}, public)},
        "/openapi.json": {"get": _op("openapi", "This document", _ok(200, OBJECT), public)},
        "/": {"get": _op("root", "Where a browser lands: the builder", {"307": {
            "description": "Redirect to /builder/; the Link header points at this document",
            "headers": {"Location": {"schema": STRING}, "Link": {"schema": STRING}}}}, public)},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Journeyflow", "version": "1",
                 "description": "Event intake (Segment spec) and journey management. See docs/api.md."},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key"},
                "basic": {"type": "http", "scheme": "basic", "description": "The key as user name (Segment style)"},
                "signature": {"type": "apiKey", "in": "header", "name": "Journeyflow-Signature",
                              "description": "t=<unix seconds>,k=<key id>,v2=<HMAC-SHA256 hex, keyed by the key's "
                                             "SHA-256 hex digest, of '<t>\\n<METHOD>\\n<path>\\n<query>\\n' + body>"},
            },
        },
    }
