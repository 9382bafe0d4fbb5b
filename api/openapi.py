"""The OpenAPI 3.1 document served at /openapi.json, built by hand next to the routes it
describes. `tests/api/test_openapi.py` checks that it lists exactly the app's routes, and
schemathesis checks every answer against it."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
PROBLEM = "application/problem+json"
SLUG_PATTERN = "^[a-z0-9][a-z0-9_-]{0,99}$"

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

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": STRING, "title": STRING, "status": INTEGER, "detail": STRING, "instance": STRING,
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
    "Message": {
        "type": "object",
        "description": "A Segment-spec message; userId or anonymousId is required (alias: userId and previousId).",
        "properties": {
            "type": {"type": "string", "enum": ["track", "identify", "alias"]},
            "messageId": STRING, "userId": STRING, "anonymousId": STRING, "previousId": STRING,
            "event": STRING, "properties": OBJECT, "traits": OBJECT, "context": OBJECT, "timestamp": TIME,
        },
    },
    "Accepted": {"type": "object", "required": ["accepted"], "properties": {"accepted": INTEGER}},
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
                                                       "goal there), suppressed. The journey: entered, exited, "
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
    "CouponPool": {"type": "object", "required": ["name", "total", "issued", "redeemed", "expired", "available"],
                   "properties": {"name": STRING, "total": INTEGER, "issued": INTEGER, "redeemed": INTEGER,
                                  "expired": INTEGER, "available": INTEGER,
                                  "added": INTEGER, "duplicates": INTEGER}},
}

WRITE: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}, {"signature": []}]
ADMIN = WRITE  # the same schemes; the key's kind decides (403 for a write key)


def _problems(*codes: int) -> dict[str, Any]:
    titles = {400: "Invalid input, each bad field named", 401: "No, unknown or revoked key; bad signature",
              403: "A write key on an admin route", 404: "Not found", 405: "Method not allowed",
              409: "Not possible in the current state", 413: "Body or batch too large",
              415: "Wrong media type", 422: "Journey text with problems", 503: "Try again"}
    return {str(c): {"description": titles[c], "content": {PROBLEM: {"schema": _ref("Problem")}}} for c in codes}


def _ok(code: int, schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {JSON: {"schema": schema}}}}


def _body(schema: Schema, media: str = JSON) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string", "pattern": SLUG_PATTERN}}
POOL = {"name": "name", "in": "path", "required": True, "schema": STRING}
AUTH_ERRORS = (400, 401, 403)


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
    return {"post": _op(op_id, summary, _ok(202, _ref("Accepted"), "Stored durably"), WRITE, body=_body(schema),
                        errors=(413, 415, 503))}


def _status(action: str) -> dict[str, Any]:
    schema = {"type": "object", "required": ["slug", "status"], "properties": {"slug": STRING, "status": STRING}}
    return {"post": _op(f"{action}Journey", f"{action.capitalize()} a journey", _ok(200, schema), parameters=[SLUG],
                        errors=(404, 409))}


def document() -> dict[str, Any]:
    journey_body = {"type": "object", "required": ["source"],
                    "properties": {"source": STRING, "slug": {"type": "string", "pattern": SLUG_PATTERN}}}
    public: list[dict[str, list[str]]] = []
    paths: dict[str, Any] = {
        "/v1/track": _ingest("track", "Record an event", {"allOf": [_ref("Message"), {"required": ["event"]}]}),
        "/v1/identify": _ingest("identify", "Attach traits and identities to a person", _ref("Message")),
        "/v1/alias": _ingest("alias", "Say two ids are one person",
                             {"allOf": [_ref("Message"), {"required": ["previousId", "userId"]}]}),
        "/v1/batch": _ingest("batch", "Several messages in one call, all or none", {
            "type": "object", "required": ["batch"],
            "properties": {"batch": _array(_ref("Message")), "context": OBJECT}}),
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
            body=_body({"type": "object", "required": ["source"], "properties": {"source": STRING}}),
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
            parameters=[SLUG, {"name": "number", "in": "path", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}], errors=(404,))},
        "/v1/journeys/{slug}/diff": {"get": _op(
            "diffVersions", "Unified diff of two versions' texts",
            _ok(200, {"type": "object", "required": ["from", "to", "diff"],
                      "properties": {"from": INTEGER, "to": INTEGER, "diff": STRING}}),
            parameters=[SLUG, *[{"name": n, "in": "query", "required": True,
                                 "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
                                for n in ("from", "to")]], errors=(404,))},
        "/v1/journeys/{slug}/entries": {"post": _op(
            "enterUser", "Enter a user into a live journey with `trigger api`",
            _ok(200, {"type": "object", "required": ["slug", "entered"],
                      "properties": {"slug": STRING, "entered": BOOLEAN}}),
            parameters=[SLUG], errors=(404, 409, 413, 415),
            body=_body({"type": "object", "properties": {
                "userId": STRING, "anonymousId": STRING,
                "identities": {"type": "object", "additionalProperties": STRING}}}))},
        "/v1/journeys/{slug}/analytics": {"get": _op(
            "journeyAnalytics", "Counts per step over time; split arms' conversion with 95% intervals",
            _ok(200, _ref("Analytics")), errors=(404,),
            parameters=[SLUG, {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                             "maximum": 2**31 - 1}},
                        {"name": "granularity", "in": "query", "schema": {"type": "string",
                                                                          "enum": ["hour", "day"]}}])},
        "/v1/profiles": {"get": _op(
            "searchProfiles", "Find the profile that holds an identity",
            _ok(200, {"type": "object", "required": ["profiles"], "properties": {"profiles": _array(_ref("Profile"))}}),
            parameters=[{"name": "kind", "in": "query", "required": True, "schema": STRING},
                        {"name": "value", "in": "query", "required": True, "schema": STRING}])},
        "/v1/profiles/{profile_id}": {"get": _op(
            "readProfile", "A profile: traits, identities, tags, journey runs, deliveries",
            _ok(200, _ref("ProfileDetail")), errors=(404,),
            parameters=[{"name": "profile_id", "in": "path", "required": True,
                         "schema": {"type": "integer", "minimum": 1}}])},
        "/v1/coupon-pools": {"post": _op(
            "createCouponPool", "Create a coupon pool", _ok(201, _ref("CouponPool"), "Created"),
            body=_body({"type": "object", "required": ["name"], "properties": {"name": STRING}}),
            errors=(409, 413, 415))},
        "/v1/coupon-pools/{name}": {"get": _op(
            "couponStock", "A pool's stock", _ok(200, _ref("CouponPool")), parameters=[POOL], errors=(404,))},
        "/v1/coupon-pools/{name}/codes": {"post": _op(
            "uploadCodes", "Upload codes, one a line (CSV, streamed)", _ok(200, _ref("CouponPool")),
            parameters=[POOL], body=_body(STRING, "text/csv"), errors=(404, 413, 415))},
        "/healthz": {"get": _op("healthz", "The process answers",
                                _ok(200, {"type": "object", "properties": {"status": STRING}}), public)},
        "/readyz": {"get": _op("readyz", "The database answers",
                               _ok(200, {"type": "object", "properties": {"status": STRING, "database": STRING}}),
                               public, errors=(503,))},
        "/metrics": {"get": _op("metrics", "Prometheus metrics", {"200": {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": STRING}}}}, public)},
        "/openapi.json": {"get": _op("openapi", "This document", _ok(200, OBJECT), public)},
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
                              "description": "t=<unix seconds>,k=<key id>,v1=<HMAC-SHA256 hex of '<t>.' + body>"},
            },
        },
    }
