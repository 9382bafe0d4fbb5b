"""`journeyflow serve` as a new user meets it, and what a crash after a 202 leaves behind."""

from __future__ import annotations

import asyncio
import shlex
import signal
import time
from pathlib import Path

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from journeyflow.cli import main
from storage import connect
from storage.tables import events, journeys, outbox

from .conftest import ROOT, run_serve

TOTAL, KILL_AFTER, CONCURRENCY = 3000, 300, 16  # requests; 202s before the kill; senders at once


def wait_for_delivery(url: str, step: str, timeout: float = 30.0) -> str | None:
    """The status of the outbox row of `step` once it is no longer pending (None on timeout)."""
    db = connect(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with db.connect() as conn:
                status = conn.execute(select(outbox.c.status).where(outbox.c.step_id == step)).scalar()
            if status not in (None, "pending"):
                return str(status)
            time.sleep(0.1)
        return None
    finally:
        db.dispose()


def test_first_start_prints_keys_and_a_curl_line_that_works(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    served = run_serve(url, "--examples", str(ROOT / "examples/journeys"))
    try:
        curl = shlex.split(served.line("curl "))
        # the curl line, sent as curl would: -u KEY: is HTTP Basic, -d the body
        key = curl[curl.index("-u") + 1].rstrip(":")
        body = curl[curl.index("-d") + 1]
        response = httpx.post(curl[curl.index("-X") + 2], content=body, auth=(key, ""),
                              headers={"Content-Type": "application/json"})
        assert response.status_code == 200
        assert key == served.write_key
        admin = httpx.get(f"{served.url}/v1/journeys", headers={"Authorization": f"Bearer {served.admin_key}"})
        assert len(admin.json()["journeys"]) == len(list((ROOT / "examples/journeys").glob("*.journey")))
        # The same process applies events and dispatches what they cause (logged, by default). The
        # examples keep quiet hours, so the test brings a journey that sends at any hour.
        admin_auth = {"Authorization": f"Bearer {served.admin_key}"}
        hello = 'journey "Hello"\n  trigger event "hello"\n\n  @hi send sms "hi {{ user.first_name }}"\n'
        assert httpx.post(f"{served.url}/v1/journeys", json={"source": hello}, headers=admin_auth).status_code == 201
        assert httpx.post(f"{served.url}/v1/journeys/hello/publish", headers=admin_auth).status_code == 200
        assert httpx.post(f"{served.url}/v1/batch", auth=(key, ""), json={"batch": [
            {"type": "identify", "userId": "u1", "traits": {"phone": "+8613800000000"}, "messageId": "who-1"},
            {"type": "track", "userId": "u1", "event": "hello", "messageId": "hello-1"}]}).status_code == 200
        assert wait_for_delivery(url, "hi") == "sent"
    finally:
        served.stop()
    db = connect(url)
    try:
        with db.connect() as conn:
            assert [e.name for e in conn.execute(select(events))] == ["signup", None, "hello"]
            welcome = select(journeys.c.status).where(journeys.c.slug == "welcome_onboarding")
            assert conn.execute(welcome).scalar() == "live"
    finally:
        db.dispose()

    again = run_serve(url, "--examples", str(ROOT / "examples/journeys"), first_start=False)
    try:
        assert not any("key:" in line for line in again.output)  # keys are printed once, ever
        assert not any("published" in line for line in again.output)  # examples loaded once
    finally:
        again.stop()


def test_every_202_is_in_the_database_after_a_kill(tmp_path: Path) -> None:
    """SIGKILL the server while requests are in flight: each one answered 202 is stored."""
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    served = run_serve(url, "--no-engine")
    accepted: list[str] = []
    numbers = iter(range(TOTAL))

    async def sender(client: httpx.AsyncClient) -> None:
        """Sends one request after another until the server is gone."""
        for i in numbers:
            try:
                response = await client.post("/v1/track", json={"userId": f"u{i % 20}", "event": "e",
                                                                "messageId": f"m{i}"})
            except httpx.TransportError:
                return
            if response.status_code == 200:
                accepted.append(f"m{i}")
            if len(accepted) == KILL_AFTER:
                served.process.send_signal(signal.SIGKILL)

    async def flood() -> None:
        async with httpx.AsyncClient(base_url=served.url, auth=(served.write_key, "")) as client:
            await asyncio.gather(*(sender(client) for _ in range(CONCURRENCY)))

    try:
        asyncio.run(flood())
    finally:
        served.stop(kill=True)
    assert len(accepted) >= KILL_AFTER
    db = connect(url)
    try:
        with db.connect() as conn:
            stored = set(conn.execute(select(events.c.message_id)).scalars())
    finally:
        db.dispose()
    assert set(accepted) <= stored
    assert len(stored) < TOTAL  # the kill did land mid-flood


def test_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--kind", "admin", "--name", "ops", "--database", url])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("jf_admin_")
    listed = runner.invoke(main, ["keys", "list", "--database", url])
    assert "\tadmin\tops\t" in listed.output and "active" in listed.output and secret not in listed.output
    assert runner.invoke(main, ["keys", "revoke", "1", "--database", url]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list", "--database", url]).output
    assert runner.invoke(main, ["keys", "revoke", "1", "--database", url]).exit_code == 1
