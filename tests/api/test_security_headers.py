"""The headers that stop framing, sniffing and injected script, on a real server on loopback."""

from __future__ import annotations

import httpx

from .conftest import Server


def test_builder_pages_refuse_framing_and_foreign_script(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/builder/login")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy and "unsafe-eval" not in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in page.headers  # plain HTTP: HSTS would be ignored
        assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]


def test_api_answers_are_not_sniffed_and_carry_no_page_policy(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        answer = client.get("/healthz")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in answer.headers
        refused = client.post("/v1/track", json={})  # no key: a 401 problem gets the header too
        assert refused.status_code == 401
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert client.get("/builderish").headers.get("content-security-policy") is None
