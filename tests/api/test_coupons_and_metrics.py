"""Coupon pools over HTTP (CSV streamed in) and the Prometheus exposition."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Server


def test_a_pool_is_created_stocked_from_csv_and_counted(server: Server) -> None:
    def csv() -> Iterator[bytes]:  # chunked, split mid-line
        yield b"code\nA-1\nA-"
        yield b"2\nA-3\nA-1\n"

    with server.client(server.admin) as client:
        created = client.post("/v1/coupon-pools", json={"name": "LENS_TRIAL"})
        assert (created.status_code, created.json()["total"]) == (201, 0)
        assert client.post("/v1/coupon-pools", json={"name": "LENS_TRIAL"}).status_code == 409
        uploaded = client.post("/v1/coupon-pools/LENS_TRIAL/codes", content=csv(), headers={"Content-Type": "text/csv"})
        assert uploaded.status_code == 200
        assert (uploaded.json()["added"], uploaded.json()["duplicates"], uploaded.json()["available"]) == (3, 1, 3)
        bad = client.post("/v1/coupon-pools/LENS_TRIAL/codes", content=b"B-1,not-a-date\n",
                          headers={"Content-Type": "text/csv"})
        assert bad.status_code == 400
        assert client.get("/v1/coupon-pools/LENS_TRIAL").json()["total"] == 3  # the bad upload added nothing
        assert client.get("/v1/coupon-pools/NOPE").status_code == 404
        assert client.post("/v1/coupon-pools/NOPE/codes", content=b"x\n",
                           headers={"Content-Type": "text/csv"}).status_code == 404



@pytest.mark.parametrize(("csv", "line"), [
    (b"A-1\n", 1),  # no header: the first line says it is a CSV of codes
    (b"code\nA-1\nA\xff\n", 3),  # not UTF-8
    (b"code\nA,0001-01-01T00:00:00+01:00\n", 2),  # in year 0 in UTC
    (b"code\nA,9999-12-31T23:59:59-01:00\n", 2),  # in year 10000 in UTC
    (b"code\nA,2023-02-29T00:00:00Z\n", 2),
    (b"code\nA,2026-04-01T00:00:00\n", 2),  # no offset
    (b"code\n4\r5\n", 2),  # a carriage return inside a line
    (b'code\n"A,B"\n', 2),  # quoting: a code has no comma or quote
    (b"code\nA B\n", 2),
    (b"code\n" + b"A" * 65 + b"\n", 2),
])
def test_an_upload_outside_the_format_is_400_naming_its_line(server: Server, csv: bytes, line: int) -> None:
    with server.client(server.admin) as client:
        client.post("/v1/coupon-pools", json={"name": "P"})
        refused = client.post("/v1/coupon-pools/P/codes", content=csv,
                              headers={"Content-Type": "text/csv"})
        stock = client.get("/v1/coupon-pools/P").json()
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "body"
    assert refused.json()["detail"].startswith(f"the CSV cannot be imported: line {line}")
    assert stock["total"] == 0


def test_codes_in_any_script_with_times_in_any_offset_are_taken(server: Server) -> None:
    body = "\ufeffCode,Expires_At\r\n优惠-1,2028-02-29T23:59+08:00\r\nWB-2,\r\n\r\nWB-3,1900-01-01T00:00Z\r\n".encode()
    with server.client(server.admin) as client:
        client.post("/v1/coupon-pools", json={"name": "P"})
        taken = client.post("/v1/coupon-pools/P/codes", content=body, headers={"Content-Type": "text/csv"})
        malformed = client.get("/v1/coupon-pools/P%20Q")
    assert (taken.status_code, taken.json()["added"], taken.json()["expired"]) == (200, 3, 1)
    assert (malformed.status_code, malformed.json()["errors"][0]["field"]) == (400, "name")

def test_a_pool_gives_one_code_per_user_unless_told_otherwise(server: Server) -> None:
    with server.client(server.admin) as client:
        default = client.post("/v1/coupon-pools", json={"name": "LENS_TRIAL"})
        unlimited = client.post("/v1/coupon-pools", json={"name": "GIFT", "codes_per_user": "unlimited"})
        assert (default.status_code, default.json()["codes_per_user"]) == (201, "one")
        assert (unlimited.status_code, unlimited.json()["codes_per_user"]) == (201, "unlimited")
        listed = client.get("/v1/coupon-pools")
        assert listed.status_code == 200
        assert [(p["name"], p["codes_per_user"], p["total"]) for p in listed.json()["pools"]] == [
            ("GIFT", "unlimited", 0), ("LENS_TRIAL", "one", 0)]
        changed = client.patch("/v1/coupon-pools/LENS_TRIAL", json={"codes_per_user": "unlimited"})
        assert (changed.status_code, changed.json()["codes_per_user"]) == (200, "unlimited")
        assert client.get("/v1/coupon-pools/LENS_TRIAL").json()["codes_per_user"] == "unlimited"
        assert client.patch("/v1/coupon-pools/NOPE", json={"codes_per_user": "one"}).status_code == 404


@pytest.mark.parametrize("body", [{"codes_per_user": "two"}, {"codes_per_user": None}, {"codes_per_user": 1},
                                  {"codes_per_user": ["one"]}])
def test_a_bad_codes_per_user_is_a_problem_naming_the_field(server: Server, body: dict[str, object]) -> None:
    with server.client(server.admin) as client:
        created = client.post("/v1/coupon-pools", json={"name": "P", **body})
        client.post("/v1/coupon-pools", json={"name": "Q"})
        changed = client.patch("/v1/coupon-pools/Q", json=body)
        missing = client.patch("/v1/coupon-pools/Q", json={})
        pools = client.get("/v1/coupon-pools").json()["pools"]
    for refused in (created, changed, missing):
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"] == [{"field": "codes_per_user", "detail": "must be one of one, unlimited"}]
    assert [(p["name"], p["codes_per_user"]) for p in pools] == [("Q", "one")]


def test_changing_a_pool_needs_an_admin_key(server: Server) -> None:
    with server.client(server.admin) as client:
        client.post("/v1/coupon-pools", json={"name": "P"})
    with server.client(server.write) as client:
        assert client.patch("/v1/coupon-pools/P", json={"codes_per_user": "unlimited"}).status_code == 403
        assert client.get("/v1/coupon-pools").status_code == 403
    with server.client() as client:
        assert client.patch("/v1/coupon-pools/P", json={"codes_per_user": "unlimited"}).status_code == 401


def test_metrics_are_prometheus_text(server: Server) -> None:
    with server.client(server.write) as client:
        client.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u", "event": "e", "messageId": "1"},
                                                 {"type": "track", "userId": "u", "event": "e", "messageId": "2"}]})
        metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = dict(line.rsplit(" ", 1) for line in metrics.text.splitlines() if not line.startswith("#"))
    assert samples["journeyflow_events_accepted_total"] == "2"
    assert samples["journeyflow_events_pending"] == "2"
    assert float(samples["journeyflow_processing_lag_seconds"]) >= 0
    assert samples["journeyflow_timers_due"] == "0"


def test_health_and_readiness(server: Server) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["database"] == server.db.dialect.name
