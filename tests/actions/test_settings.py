"""Settings: the TOML file, the environment over it, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions.errors import SettingsInvalid
from actions.settings import Secret, Settings, load_settings

TOML = """
[dispatch]
concurrency = 8
[dispatch.retry]
max_attempts = 5
[guard]
allow_networks = ["10.20.0.0/16"]
[sms]
provider = "twilio"
rate_per_second = 5
[sms.twilio]
account_sid = "AC1"
auth_token = "from-the-file"
from = "+15005550006"
[templates.lens_intro]
title = "Meet our lenses"
text = "Hi {{ user.first_name }}"
"""


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "actions.toml"
    path.write_text(TOML)
    return path


def test_nothing_configured_means_every_channel_logs() -> None:
    settings = load_settings(None, {})
    assert (settings.dispatch, settings.guard, settings.templates) == (Settings().dispatch, Settings().guard, {})
    assert {c.provider for c in settings.channels.values()} == {"log"}
    assert (settings.channel("sms").recipient, settings.channel("push").recipient) == ("phone", "push_token")


def test_the_file_is_read_and_typed(file: Path) -> None:
    settings = load_settings(file, {})
    assert (settings.dispatch.concurrency, settings.dispatch.retry.max_attempts) == (8, 5)
    assert settings.channel("sms").provider == "twilio"
    assert (settings.channel("sms").rate_per_second, settings.channel("sms").burst) == (5.0, 5)
    assert settings.channel("sms").options.secret("auth_token") == Secret("from-the-file")
    assert settings.templates["lens_intro"].title == "Meet our lenses"
    assert str(settings.guard.allow_networks[0]) == "10.20.0.0/16"


def test_the_environment_overrides_the_file_key_by_key(file: Path) -> None:
    settings = load_settings(file, {
        "JOURNEYFLOW_ACTIONS__SMS__TWILIO__AUTH_TOKEN": "from-the-environment",
        "JOURNEYFLOW_ACTIONS__DISPATCH__CONCURRENCY": "16",
        "JOURNEYFLOW_ACTIONS__GUARD__ALLOW_PRIVATE": "true",
        "JOURNEYFLOW_ACTIONS__GUARD__ALLOW_HOSTS": "crm.internal, points.internal",
        "OTHER_VARIABLE": "ignored",
    })
    assert settings.channel("sms").options.secret("auth_token").reveal() == "from-the-environment"
    assert settings.dispatch.concurrency == 16
    assert settings.guard.allow_private is True
    assert settings.guard.allow_hosts == ("crm.internal", "points.internal")
    assert settings.channel("sms").options.text("account_sid") == "AC1"  # the rest of the file stays


def test_secrets_are_masked_wherever_they_are_printed(file: Path) -> None:
    settings = load_settings(file, {})
    secret = settings.channel("sms").options.secret("auth_token")
    assert "from-the-file" not in repr(settings) + str(secret) + repr(secret) + f"{secret}"
    assert secret.reveal() == "from-the-file"


@pytest.mark.parametrize(("environment", "message"), [
    ({"JOURNEYFLOW_ACTIONS__DISPATCH__CONCURRENCY": "many"}, "dispatch.concurrency: expected a whole number"),
    ({"JOURNEYFLOW_ACTIONS__DISPATCH__CONCURRENCY": "0"}, "dispatch.concurrency: must be at least 1"),
    ({"JOURNEYFLOW_ACTIONS__SMS__RATE_PER_SECOND": "0"}, "sms.rate_per_second: must be more than 0"),
    ({"JOURNEYFLOW_ACTIONS__GUARD__ALLOW_PRIVATE": "perhaps"}, "guard.allow_private: expected true or false"),
    ({"JOURNEYFLOW_ACTIONS__GUARD__ALLOW_NETWORKS": "10.0.0.0/33"}, "guard.allow_networks: '10.0.0.0/33'"),
    ({"JOURNEYFLOW_ACTIONS__DISPATCH": "x"}, "dispatch: expected a table"),
])
def test_errors_name_the_key(environment: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsInvalid, match=message.replace(".", r"\.").replace("/", "/")):
        load_settings(None, environment)


def test_a_broken_file_says_where(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[sms\n")
    with pytest.raises(SettingsInvalid, match=r"broken\.toml: not valid TOML"):
        load_settings(broken, {})
    with pytest.raises(SettingsInvalid, match="cannot read"):
        load_settings(tmp_path / "missing.toml", {})


@pytest.mark.parametrize(("text", "says"), [
    ("Hi {{ cycler.__init__.__globals__ }}", "templates.bad.text: "),
    ("{{ 9 ** 12000000 }}", "4096 bits"),
    ("Hi {{ user.first_name ", "templates.bad.text: "),
])
def test_a_named_template_a_send_would_refuse_is_a_settings_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "actions.toml"
    path.write_text(f"[templates.bad]\ntext = '''{text}'''\n", encoding="utf-8")  # a TOML literal string
    with pytest.raises(SettingsInvalid, match=r"templates\.bad\.text") as refused:
        load_settings(path, {})
    assert says in str(refused.value)


def test_a_named_title_is_read_as_a_template_too(tmp_path: Path) -> None:
    path = tmp_path / "actions.toml"
    path.write_text("[templates.t]\ntext = 'Hi'\ntitle = \"{{ ''.__class__ }}\"\n", encoding="utf-8")
    with pytest.raises(SettingsInvalid, match=r"templates\.t\.title"):
        load_settings(path, {})
