"""Each provider against a loopback server speaking its remote API: the request's shape, the
answer's meaning, and which failures are retryable, permanent or uncertain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from actions import signing
from actions.errors import MessageInvalid, PermanentFailure, RetryableFailure, SettingsInvalid, UncertainOutcome
from actions.providers import build_provider
from actions.providers.base import Delivery, Provider, Receipt
from actions.settings import Settings
from engine.clock import VirtualClock
from tests.actions.conftest import (
    APNS_TOKEN,
    FCM_TOKEN,
    HANG_TIMEOUT,
    NOW,
    SENDING_TIMEOUT,
    TWILIO_SID,
    WEBHOOK_SECRET,
    Served,
    settings,
    twilio_settings,
    webhook_settings,
)

T = TypeVar("T")
DEVICE = "a" * 64


def run(config: Settings, channel: str, use: Callable[[Provider], Awaitable[T]]) -> T:
    async def go() -> T:
        provider = build_provider(channel, config, VirtualClock(NOW))
        try:
            return await use(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def send(config: Settings, delivery: Delivery) -> Receipt:
    return run(config, delivery.channel, lambda provider: provider.send(delivery))


def text(to: str = "+8613800000000", body: str = "hello", channel: str = "sms", title: str | None = None) -> Delivery:
    return Delivery(7, "41/welcome_sms", channel, to, text=body, title=title, labels={"journey": "welcome"})


# --------------------------------------------------------------------------- twilio


def test_twilio_posts_the_messages_form_with_basic_auth(twilio: Served) -> None:
    receipt = send(settings(sms=twilio_settings(twilio.url)), text(body="你好, Li"))
    assert twilio.remote.received == [{"To": "+8613800000000", "Body": "你好, Li", "From": "+15005550006"}]
    assert receipt.provider_message_id is not None and receipt.provider_message_id.startswith("SM")


def test_twilio_can_send_through_a_messaging_service(twilio: Served) -> None:
    config = twilio_settings(twilio.url)
    config["twilio"] = {**config["twilio"], "messaging_service_sid": "MG123"}
    del config["twilio"]["from"]
    send(settings(sms=config), text())
    assert twilio.remote.received[0]["MessagingServiceSid"] == "MG123"


@pytest.mark.parametrize(("script", "error", "retry_after"), [
    ("503", RetryableFailure, None),
    ("429:30", RetryableFailure, 30.0),
    ("400", PermanentFailure, None),
    ("hang", UncertainOutcome, None),
])
def test_twilio_failures_mean_what_they_say(twilio: Served, script: str, error: type[Exception],
                                            retry_after: float | None) -> None:
    twilio.remote.script = [script]
    timeout = HANG_TIMEOUT if script == "hang" else SENDING_TIMEOUT
    with pytest.raises(error) as raised:
        send(settings(sms=twilio_settings(twilio.url, timeout_seconds=timeout)), text())
    assert type(raised.value) is error
    assert getattr(raised.value, "retry_after", None) == retry_after


def test_wrong_credentials_are_retryable_not_lost(twilio: Served) -> None:
    config = twilio_settings(twilio.url)
    config["twilio"]["auth_token"] = "wrong"
    with pytest.raises(RetryableFailure, match="authentication failed"):
        send(settings(sms=config), text())


def test_a_server_that_is_not_there_is_retryable() -> None:
    with pytest.raises(RetryableFailure, match="could not connect"):
        send(settings(sms=twilio_settings("http://127.0.0.1:9")), text())


def test_twilio_needs_a_sender() -> None:
    config = twilio_settings("http://127.0.0.1:9")
    del config["twilio"]["from"]
    with pytest.raises(SettingsInvalid, match=r"sms\.twilio\.from: give `from` or `messaging_service_sid`"):
        build_provider("sms", settings(sms=config), VirtualClock(NOW))


# --------------------------------------------------------------------------- push


def fcm_settings(url: str, **fcm: Any) -> dict[str, Any]:
    return {"provider": "fcm", "timeout_seconds": SENDING_TIMEOUT,
            "fcm": {"project_id": "lens-app", "access_token": FCM_TOKEN, "base_url": url, **fcm}}


def test_fcm_sends_an_http_v1_message(fcm: Served) -> None:
    receipt = send(settings(push=fcm_settings(fcm.url)), text("device-token", "Try our lenses", "push", "New"))
    [received] = fcm.remote.received
    assert received["project"] == "lens-app"
    assert received["message"] == {"token": "device-token", "notification": {"title": "New", "body": "Try our lenses"},
                                   "data": {"journeyflow_key": "41/welcome_sms", "journey": "welcome"}}
    assert receipt.provider_message_id == "projects/lens-app/messages/1"


def test_fcm_unregistered_token_is_permanent(fcm: Served) -> None:
    with pytest.raises(PermanentFailure, match="UNREGISTERED"):
        send(settings(push=fcm_settings(fcm.url)), text("unregistered-token", channel="push"))


def test_fcm_reads_a_refreshed_token_file(fcm: Served, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("stale\n")
    config = fcm_settings(fcm.url, access_token_file=str(token_file))
    del config["fcm"]["access_token"]

    async def twice(provider: Provider) -> None:
        with pytest.raises(RetryableFailure, match="HTTP 401"):
            await provider.send(text("t", channel="push"))
        token_file.write_text(FCM_TOKEN + "\n")
        token_file.touch()
        await provider.send(text("t", channel="push"))

    run(settings(push=config), "push", twice)
    assert len(fcm.remote.received) == 1


def apns_settings(url: str) -> dict[str, Any]:
    return {"provider": "apns", "timeout_seconds": SENDING_TIMEOUT,
            "apns": {"topic": "com.example.lens", "provider_token": APNS_TOKEN, "base_url": url}}


def test_apns_posts_to_the_device_with_token_auth_headers(apns: Served) -> None:
    receipt = send(settings(push=apns_settings(apns.url)), text(DEVICE, "Try our lenses", "push", "New"))
    [received] = apns.remote.received
    assert received["token"] == DEVICE
    assert received["payload"] == {"aps": {"alert": {"title": "New", "body": "Try our lenses"}},
                                   "journeyflow_key": "41/welcome_sms"}
    headers = received["headers"]
    assert (headers["apns-topic"], headers["apns-push-type"], headers["apns-priority"]) == (
        "com.example.lens", "alert", "10")
    assert receipt.provider_message_id == headers["apns-id"]
    again = send(settings(push=apns_settings(apns.url)), text(DEVICE, "again", "push"))
    assert again.provider_message_id == receipt.provider_message_id  # apns-id derives from the key


def test_apns_uses_http2(apns: Served) -> None:
    def http2_enabled(provider: Provider) -> Awaitable[bool]:
        async def check() -> bool:
            return all(t._pool._http2 for t in provider.slots.transports)  # type: ignore[attr-defined]
        return check()

    assert run(settings(push=apns_settings(apns.url)), "push", http2_enabled)


def test_apns_bad_device_token_is_permanent_and_an_expired_provider_token_is_retried(apns: Served) -> None:
    with pytest.raises(PermanentFailure, match="BadDeviceToken"):
        send(settings(push=apns_settings(apns.url)), text("not-a-token", channel="push"))
    config = apns_settings(apns.url)
    config["apns"]["provider_token"] = "expired"
    with pytest.raises(RetryableFailure, match="InvalidProviderToken"):
        send(settings(push=config), text(DEVICE, channel="push"))


# --------------------------------------------------------------------------- generic HTTP


def gateway_settings(url: str, timeout: float = SENDING_TIMEOUT) -> dict[str, Any]:
    return {"provider": "http", "timeout_seconds": timeout, "http": {
        "url": f"{url}/v2/send", "headers": {"Authorization": "Bearer gateway-key"},
        "body": '{"mobile": {{ to | tojson }}, "content": {{ text | tojson }}}',
        "idempotency_header": "X-Request-Id", "message_id_field": "id"}}


def test_the_generic_provider_renders_its_body_template(gateway: Served) -> None:
    receipt = send(settings(sms=gateway_settings(gateway.url)), text(body='He said "hi"\n'))
    assert gateway.remote.received == [{"key": "41/welcome_sms",
                                        "body": {"mobile": "+8613800000000", "content": 'He said "hi"\n'}}]
    assert receipt.provider_message_id == "gw-1"


def test_the_generic_provider_retries_a_timeout_under_its_idempotency_header(gateway: Served) -> None:
    gateway.remote.script = ["hang"]
    with pytest.raises(RetryableFailure, match="same key"):
        send(settings(sms=gateway_settings(gateway.url, HANG_TIMEOUT)), text())


def test_a_body_template_that_is_not_json_fails_the_message(gateway: Served) -> None:
    config = gateway_settings(gateway.url)
    config["http"]["body"] = '{"content": "{{ text }}"}'
    with pytest.raises(MessageInvalid, match="tojson"):
        send(settings(sms=config), text(body='say "hi"'))
    assert gateway.remote.received == []


# --------------------------------------------------------------------------- webhooks


def test_webhooks_are_signed_and_keyed(receiver: Served) -> None:
    body = {"member_id": "m-1", "points": 200, "name": "李"}
    send(settings(webhook=webhook_settings()), Delivery(1, "9/credit", "webhook", f"{receiver.url}/v1/credits",
                                                        body=body))
    [received] = receiver.remote.received  # the receiver verified the signature, or it would have said 401
    assert received["key"] == "9/credit"
    assert json.loads(received["body"]) == body


def test_a_webhook_signed_with_another_secret_is_refused_and_kept_for_a_retry(receiver: Served) -> None:
    config = webhook_settings()
    config["http"]["signing_secret"] = "not-the-receivers"
    with pytest.raises(RetryableFailure, match=r"HTTP 401.*does not match"):
        send(settings(webhook=config), Delivery(1, "9/credit", "webhook", f"{receiver.url}/x", body={}))


def test_the_receiver_refuses_a_replayed_call(receiver: Served) -> None:
    send(settings(webhook=webhook_settings()), Delivery(1, "9/credit", "webhook", f"{receiver.url}/x", body={"a": 1}))
    later = int(NOW.timestamp()) + signing.DEFAULT_TOLERANCE_SECONDS + 1
    signed = signing.sign(WEBHOOK_SECRET, int(NOW.timestamp()), b'{"a":1}')
    with pytest.raises(signing.SignatureInvalid, match="replay"):
        signing.verify(WEBHOOK_SECRET, signed, b'{"a":1}', later)


def test_settings_never_show_secrets() -> None:
    config = settings(sms=twilio_settings("https://api.twilio.com"), webhook=webhook_settings())
    provider = build_provider("sms", config, VirtualClock(NOW))
    shown = repr(config) + repr(provider.config) + str(vars(provider))  # type: ignore[attr-defined]
    assert "twilio-secret-token" not in shown
    assert WEBHOOK_SECRET not in shown
    assert TWILIO_SID in shown  # the account id is not a secret; it helps to see it
    asyncio.run(provider.aclose())


def test_a_captured_call_replayed_later_is_refused_by_the_receiver(receiver: Served) -> None:
    body = b'{"member_id":"m-1","points":200}'
    captured = {"Content-Type": "application/json", "Idempotency-Key": "9/credit",
                signing.SIGNATURE_HEADER: signing.sign(WEBHOOK_SECRET, int(NOW.timestamp()), body)}
    receiver.remote.now = lambda: NOW + timedelta(minutes=10)
    replayed = httpx.post(f"{receiver.url}/v1/credits", content=body, headers=captured)
    assert replayed.status_code == 401
    assert "a replay?" in replayed.json()["error"]
    assert receiver.remote.received == []
