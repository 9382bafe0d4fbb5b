"""Schemathesis against a real server, as `schemathesis run --checks all --mode all` does it:
every phase (coverage's boundary and negative cases, fuzzing, stateful sequences), every check
(a 5xx, an undocumented status or body, a valid request refused, an invalid one accepted, a 405
whose Allow leaves a method out), on both backends. Any finding fails the test, listed with its
curl line; the number of examples per operation keeps it to well under a minute."""

from __future__ import annotations

import schemathesis
from schemathesis.engine import events

from api.openapi import document

from .conftest import Server

EXAMPLES_PER_OPERATION = 15
SEED = 14  # the same cases on every run, so a failure here reproduces; change it to explore
INGEST = ["track", "identify", "alias", "group", "page", "screen", "batch"]
# Journey text is checked past what a schema can say: text that does not compile is a 422 with
# the problems by line and column, for a valid request as much as for any other.
JOURNEY_TEXT = ["createJourney", "publishJourney"]


def config(server: Server) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "workers": 1,  # worker threads took schemathesis's own schema walk past Python's recursion limit
        "headers": {"Authorization": f"Bearer {server.admin}"},
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
        "phases": {"stateful": {"max-steps": 6}},
        "operations": [
            {"include-operation-id": INGEST, "headers": {"Authorization": f"Bearer {server.write}"}},
            {"include-operation-id": JOURNEY_TEXT,
             "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", 401, 403, 404, 409, 422]}}},
        ],
    })


def findings(event: events.EngineEvent) -> list[str]:
    if isinstance(event, events.ScenarioFinished):
        recorder = event.recorder
        found = []
        for checks in recorder.checks.values():
            for check in checks:
                if check.failure_info is not None:
                    failure = check.failure_info.failure
                    found.append(f"{recorder.label} [{failure.code} {check.name}] {failure.title}: "
                                 f"{failure.message}\n    {check.failure_info.code_sample}")
        return found
    if isinstance(event, events.NonFatalError):
        return [f"{event.label}: schemathesis could not test it: {event.value!r}"]
    if isinstance(event, events.FatalError):
        raise event.exception
    return []


def test_schemathesis_finds_nothing(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config(server))
    found: list[str] = []
    tested: set[str] = set()
    for event in schemathesis.engine.from_schema(schema).execute():
        found += findings(event)
        if isinstance(event, events.ScenarioFinished) and event.recorder.cases:
            tested.add(event.recorder.label)
    assert not found, "\n".join(found)
    documented = {f"{method.upper()} {path}" for path, ops in document()["paths"].items() for method in ops}
    assert documented - tested <= {"GET /openapi.json"}  # schemathesis leaves out the schema's own URL
