"""Coupon pools over HTTP (CSV streamed in) and the Prometheus exposition."""

from __future__ import annotations

from collections.abc import Iterator

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
