"""`journeyflow serve` as a new user meets it, and what a crash after a 200 leaves behind."""

from __future__ import annotations

import asyncio
import shlex
import signal
import threading
import time
from pathlib import Path
from typing import IO

import httpx
from click.testing import CliRunner
from sqlalchemy import select

from journeyflow.cli import main
from storage import connect
from storage.tables import events, journeys, outbox

from .conftest import ROOT, Served, run_serve

TOTAL, KILL_AFTER, CONCURRENCY = 3000, 300, 16  # requests; 200s before the kill; senders at once


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


class Tail:
    """The server's output, read on a thread as it comes: the server never blocks on a full pipe,
    and a test can wait for the line that says something happened."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.lines = list(served.output)
        self.arrived = threading.Condition()
        assert served.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(served.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.arrived:
                self.lines.append(line)
                self.arrived.notify_all()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first line holding `text`, once printed (a hang guard, not a speed bound)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while (found := next((line for line in self.lines if text in line), None)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the server never printed {text!r}:\n" + "".join(self.lines))
                self.arrived.wait(left)
        return found

    def stop(self) -> None:
        self.served.process.terminate()
        self.served.process.wait()
        self.reader.join()  # the pipe's end reached, so closing it below races no read
        self.served.stop()


def test_first_start_prints_keys_and_a_curl_line_that_works(tmp_path: Path) -> None:
    """What the README promises of the first minutes: the root address leads to the builder, and
    the printed curl line, pasted at any hour, makes an example journey send a message that is
    printed by the server and listed, with its text, by `journeyflow deliveries`."""
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    served = run_serve(url, "--examples", str(ROOT / "examples/journeys"),
                       "--actions-settings", str(ROOT / "examples/actions.toml"))
    tail = Tail(served)
    try:
        root = httpx.get(f"{served.url}/")
        assert (root.status_code, root.headers["location"]) == (307, "/builder/")
        landed = httpx.get(f"{served.url}/", follow_redirects=True)
        assert landed.status_code == 200 and landed.url.path.startswith("/builder/")
        assert "text/html" in landed.headers["content-type"]

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

        # The same process applies the events and dispatches what they cause: the example order
        # confirmation, which keeps no quiet hours, so this holds whenever the test runs. The log
        # provider's line is in the server's output, rendered: the name from the identify, the
        # order from the purchase.
        printed = tail.wait_for("journeyflow.deliveries: sms to +8613800000000")
        assert "order_confirmation/confirm" in printed
        assert "【清瞳】Lin，您的订单 o-1001 已收到" in printed
        assert wait_for_delivery(url, "confirm") == "sent"

        # ...and stored as sent, so `journeyflow deliveries` (the command the server printed)
        # shows what it said and where it went.
        command = shlex.split(tail.wait_for("deliveries --database").strip())
        assert command[0] == "journeyflow"
        listed = CliRunner(env={"COLUMNS": "250"}).invoke(main, command[1:])
        assert listed.exit_code == 0, listed.output
        assert "+8613800000000" in listed.output
        assert "【清瞳】Lin，您的订单 o-1001 已收到，金额 58 元。" in listed.output
    finally:
        tail.stop()
    db = connect(url)
    try:
        with db.connect() as conn:
            assert [e.name for e in conn.execute(select(events))] == [None, "purchase"]  # identify, track
            sent = conn.execute(select(outbox.c.recipient, outbox.c.content).where(outbox.c.step_id == "confirm")).one()
            assert sent.recipient == "+8613800000000"
            assert sent.content == "【清瞳】Lin，您的订单 o-1001 已收到，金额 58 元。感谢您选择清瞳！"
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


def test_every_200_is_in_the_database_after_a_kill(tmp_path: Path) -> None:
    """SIGKILL the server while requests are in flight: each one answered 200 is stored."""
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
