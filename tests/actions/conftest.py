"""Real HTTP servers on loopback that speak the remote APIs' shapes, and outbox helpers.

Each fake is a small Starlette app run by uvicorn in a background thread on a free port. It
checks what the real service checks (auth, required fields), answers as it answers, records what
it received, and follows a script a test sets: `remote.script = ["503", "429:120", "hang"]`
makes the next three requests fail with 503, fail with 429 and Retry-After 120, and hang (the
request was received, no answer comes: the client times out after sending). An empty script
means success.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Connection, Engine, insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from actions import signing
from actions.settings import Section, Settings, parse_settings
from storage.tables import events, identities, journey_runs, journey_versions, journeys, outbox, profiles

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TWILIO_SID = "AC00000000000000000000000000000001"
TWILIO_TOKEN = "twilio-secret-token"
FCM_TOKEN = "fcm-access-token"
APNS_TOKEN = "apns-provider-token"
WEBHOOK_SECRET = "whsec-test"
HANG_LIMIT_SECONDS = 10.0
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Remote:
    """What a fake service received, and what it should do next."""

    script: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    released: bool = False
    now: Callable[[], datetime] = lambda: NOW
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"

    async def scripted(self, request: Request, record: dict[str, Any]) -> Response | None:
        """Record the request, then the scripted failure's response (None: answer normally)."""
        with self.lock:
            self.received.append(record)
        behaviour = self.next_behaviour()
        if behaviour == "hang":
            deadline = time.monotonic() + HANG_LIMIT_SECONDS
            while not self.released and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return Response(status_code=504)
        if behaviour == "ok":
            return None
        status, _, retry_after = behaviour.partition(":")
        headers = {"Retry-After": retry_after} if retry_after else {}
        return JSONResponse({"error": f"scripted {status}"}, status_code=int(status), headers=headers)

    def keys(self, field_name: str = "key") -> list[str]:
        return [r[field_name] for r in self.received]


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


def twilio_app(remote: Remote) -> Starlette:
    """Twilio's Messages endpoint: Basic auth, form fields To/From/Body, 201 with a sid."""

    async def create_message(request: Request) -> Response:
        if _basic(request) != (TWILIO_SID, TWILIO_TOKEN) or request.path_params["sid"] != TWILIO_SID:
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, status_code=401)
        form = await request.form()
        record = {key: str(form[key]) for key in form}
        failure = await remote.scripted(request, record)
        if failure is not None:
            return failure
        if not E164.match(record.get("To", "")):
            return JSONResponse({"code": 21211, "message": f"The 'To' number {record.get('To')} is not a valid "
                                 "phone number.", "status": 400}, status_code=400)
        if not record.get("Body") or not (record.get("From") or record.get("MessagingServiceSid")):
            return JSONResponse({"code": 21602, "message": "Message body is required.", "status": 400},
                                status_code=400)
        sid = f"SM{uuid.uuid4().hex}"
        return JSONResponse({"sid": sid, "status": "queued", "to": record["To"], "body": record["Body"]},
                            status_code=201)

    return Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", create_message, methods=["POST"])])


def fcm_app(remote: Remote) -> Starlette:
    """FCM HTTP v1 messages:send: Bearer token, {"message": {"token", "notification"}}, 200 with a name."""

    async def send(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {FCM_TOKEN}":
            return JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status_code=401)
        body = await request.json()
        message = body.get("message", {})
        failure = await remote.scripted(request, {"message": message, "project": request.path_params["project"]})
        if failure is not None:
            return failure
        if message.get("token") == "unregistered-token":
            return JSONResponse({"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}},
                status_code=404)
        if not message.get("token") or "body" not in message.get("notification", {}):
            return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status_code=400)
        project = request.path_params["project"]
        return JSONResponse({"name": f"projects/{project}/messages/{len(remote.received)}"})

    return Starlette(routes=[Route("/v1/projects/{project}/messages:send", send, methods=["POST"])])


def apns_app(remote: Remote) -> Starlette:
    """APNs /3/device/<token>: bearer provider token, apns-topic and apns-push-type required."""

    async def push(request: Request) -> Response:
        headers = request.headers
        if headers.get("authorization") != f"bearer {APNS_TOKEN}":
            return JSONResponse({"reason": "InvalidProviderToken"}, status_code=403)
        payload = await request.json()
        record = {"token": request.path_params["token"], "payload": payload,
                  "headers": {k: v for k, v in headers.items() if k.startswith("apns-")}}
        failure = await remote.scripted(request, record)
        if failure is not None:
            return failure
        if not headers.get("apns-topic"):
            return JSONResponse({"reason": "MissingTopic"}, status_code=400)
        if not re.fullmatch(r"[0-9a-f]{64}", request.path_params["token"]):
            return JSONResponse({"reason": "BadDeviceToken"}, status_code=400)
        return Response(status_code=200, headers={"apns-id": headers.get("apns-id", str(uuid.uuid4()).upper())})

    return Starlette(routes=[Route("/3/device/{token}", push, methods=["POST"])])


def receiver_app(remote: Remote) -> Starlette:
    """A webhook receiver done right: verifies the signature, refuses replays, and acts once
    per Idempotency-Key (a repeat is acknowledged, not processed again)."""
    processed: set[str] = set()

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            signing.verify(WEBHOOK_SECRET, request.headers.get(signing.SIGNATURE_HEADER), body,
                           int(remote.now().timestamp()))
        except signing.SignatureInvalid as error:
            return JSONResponse({"error": str(error)}, status_code=401)
        key = request.headers.get("idempotency-key", "")
        record = {"key": key, "body": body, "path": request.url.path, "first": key not in processed}
        failure = await remote.scripted(request, record)
        if failure is not None:
            return failure
        processed.add(key)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


def gateway_app(remote: Remote) -> Starlette:
    """A generic JSON SMS gateway with an X-Request-Id idempotency header and a bearer key."""

    async def send(request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer gateway-key":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        record = {"key": request.headers.get("x-request-id"), "body": body}
        failure = await remote.scripted(request, record)
        return failure or JSONResponse({"id": f"gw-{len(remote.received)}"})

    return Starlette(routes=[Route("/v2/send", send, methods=["POST"])])


@dataclass
class Served:
    url: str
    remote: Remote


def serve(app: Starlette) -> Iterator[str]:
    """Run `app` on a free loopback port in a background thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", http="h11", loop="asyncio",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _served(factory: Callable[[Remote], Starlette]) -> Iterator[Served]:
    remote = Remote()
    generator = serve(factory(remote))
    url = next(generator)
    try:
        yield Served(url, remote)
    finally:
        remote.released = True  # let hanging handlers finish so the server can stop
        next(generator, None)


@pytest.fixture
def twilio() -> Iterator[Served]:
    yield from _served(twilio_app)


@pytest.fixture
def fcm() -> Iterator[Served]:
    yield from _served(fcm_app)


@pytest.fixture
def apns() -> Iterator[Served]:
    yield from _served(apns_app)


@pytest.fixture
def receiver() -> Iterator[Served]:
    yield from _served(receiver_app)


@pytest.fixture
def gateway() -> Iterator[Served]:
    yield from _served(gateway_app)


# --------------------------------------------------------------------------- settings and rows


# Request timeouts of the test providers. A request that must succeed gets one a loaded machine
# never misses (a provider's timeout is for the whole request: a 0.5 s one tripped on a busy
# CI machine); one sent to a server scripted to hang gets a short one, so the test ends soon.
SENDING_TIMEOUT = 10.0
HANG_TIMEOUT = 0.5


def settings(**tables: Any) -> Settings:
    """Settings from plain tables, as a TOML file would give them; loopback targets allowed."""
    data: dict[str, Any] = {"guard": {"allow_private": True}, **tables}
    return parse_settings(Section(data))


def twilio_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "twilio", "rate_per_second": 1000, "burst": 1000, "timeout_seconds": SENDING_TIMEOUT,
            "twilio": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+15005550006",
                       "base_url": url}, **extra}


def webhook_settings(**extra: Any) -> dict[str, Any]:
    return {"provider": "http", "rate_per_second": 1000, "burst": 1000, "timeout_seconds": SENDING_TIMEOUT,
            "http": {"signing_secret": WEBHOOK_SECRET}, **extra}


@dataclass
class Rows:
    """Outbox rows for tests: a journey, a profile per user, a run with its trigger event."""

    db: Engine
    journey_id: int = 0
    version_id: int = 0
    count: int = 0

    def __post_init__(self) -> None:
        with self.db.begin() as conn:
            self.journey_id = conn.execute(insert(journeys).values(
                slug="welcome", name="Welcome", created_at=NOW, updated_at=NOW).returning(journeys.c.id)).scalar_one()
            self.version_id = conn.execute(insert(journey_versions).values(
                journey_id=self.journey_id, version=1, source="", graph={}, created_at=NOW)
                .returning(journey_versions.c.id)).scalar_one()

    def profile(self, conn: Connection, traits: dict[str, Any], user_id: str | None = None) -> int:
        profile_id: int = conn.execute(insert(profiles).values(traits=traits, tags=["member"], created_at=NOW,
                                                               updated_at=NOW).returning(profiles.c.id)).scalar_one()
        if user_id:
            conn.execute(insert(identities).values(kind="user_id", value=user_id, profile_id=profile_id))
        return profile_id

    def add(self, channel: str, payload: dict[str, Any], traits: dict[str, Any] | None = None,
            send_at: datetime = NOW, status: str = "pending", event: dict[str, Any] | None = None,
            user_id: str | None = None) -> int:
        """One outbox row as the engine writes it; its id."""
        self.count += 1
        with self.db.begin() as conn:
            profile_id = self.profile(conn, traits if traits is not None else {"phone": "+8613800000000"}, user_id)
            event_id = None
            if event is not None:
                event_id = conn.execute(insert(events).values(
                    message_id=f"m{self.count}", profile_id=profile_id, type="track", name="purchase",
                    properties=event, occurred_at=NOW, received_at=NOW).returning(events.c.id)).scalar_one()
            run_id = conn.execute(insert(journey_runs).values(
                profile_id=profile_id, journey_id=self.journey_id, version_id=self.version_id, state="completed",
                entered_at=NOW, updated_at=NOW, trigger_event_id=event_id).returning(journey_runs.c.id)).scalar_one()
            step = f"{channel}_{self.count}"
            outbox_id: int = conn.execute(insert(outbox).values(
                idempotency_key=f"{run_id}/{step}", run_id=run_id, profile_id=profile_id, journey_id=self.journey_id,
                step_id=step, channel=channel, payload=payload, send_at=send_at, status=status, created_at=NOW,
                updated_at=NOW).returning(outbox.c.id)).scalar_one()
        return outbox_id


def sms(text: str, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """An sms payload exactly as engine/machine.py writes it."""
    return {"text": text, "template": None, "title": None, "results": results or {}}


@pytest.fixture
def rows(db: Engine) -> Rows:
    return Rows(db)
