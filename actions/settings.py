"""Settings for sending: one TOML file, overridden key by key by environment variables.

    [dispatch]                 # how the dispatcher works through the outbox
    concurrency = 50
    [sms]                      # one table per channel: sms, push, webhook
    provider = "twilio"        # log (the default), twilio, http
    rate_per_second = 10
    [sms.twilio]               # the provider's own table
    account_sid = "AC..."
    auth_token = "..."         # a secret: held as `Secret`, never printed
    [templates.lens_intro]     # `send push template "lens_intro"`
    title = "Meet our lenses"
    text = "Hi {{ user.first_name }}..."

Every key can come from the environment instead: `JOURNEYFLOW_ACTIONS__` and the key's path
joined by double underscores, so `sms.twilio.auth_token` is
`JOURNEYFLOW_ACTIONS__SMS__TWILIO__AUTH_TOKEN` (double, because keys contain single ones).
The environment wins, so secrets can stay out of the file. docs/actions.md lists every key.

Reading is strict: an unknown type or a missing required key raises `SettingsInvalid` naming
the full key, at start-up rather than at the first send.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsl import templates as templates_language

from .errors import SettingsInvalid

ENV_PREFIX = "JOURNEYFLOW_ACTIONS__"
SETTINGS_FILE_ENV = "JOURNEYFLOW_ACTIONS_SETTINGS"
CHANNELS = ("sms", "push", "webhook")
DEFAULT_RECIPIENT = {"sms": "phone", "push": "push_token", "webhook": ""}  # the profile trait to send to
_MISSING: Any = object()
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class Secret:
    """A credential. Its repr and str are masked so that logging a settings object, an
    exception or a provider never prints it; `reveal()` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Section:
    """One table of the settings, read with types. Errors name the full dotted key. Values from
    the environment arrive as text and are converted to the type asked for."""

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        self._data = data
        self.path = path

    def __repr__(self) -> str:  # never the values: they may be secrets
        return f"Section({self.path or '<root>'!r})"

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self._data

    def names(self) -> list[str]:
        return sorted(self._data)

    def table(self, name: str) -> Section:
        value = self._data.get(name, {})
        if not isinstance(value, Mapping):
            raise SettingsInvalid(f"{self.key(name)}: expected a table, got {type(value).__name__}")
        return Section(value, self.key(name))

    def _get(self, name: str, default: Any) -> Any:
        if name in self._data:
            return self._data[name]
        if default is _MISSING:
            raise SettingsInvalid(f"{self.key(name)}: is required")
        return default

    def text(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, str):
            raise SettingsInvalid(f"{self.key(name)}: expected a string, got {type(value).__name__}")
        return value

    def secret(self, name: str, default: Any = _MISSING) -> Any:
        value = self.text(name, default)
        return Secret(value) if isinstance(value, str) else value

    def number(self, name: str, default: Any = _MISSING, minimum: float = 0.0) -> Any:
        value = self._get(name, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SettingsInvalid(f"{self.key(name)}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsInvalid(f"{self.key(name)}: expected a number, got {type(value).__name__}")
        if value < minimum:
            raise SettingsInvalid(f"{self.key(name)}: must be at least {minimum}, got {value}")
        return float(value)

    def whole(self, name: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        value = self._get(name, default)
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise SettingsInvalid(f"{self.key(name)}: expected a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsInvalid(f"{self.key(name)}: expected a whole number, got {type(value).__name__}")
        if value < minimum:
            raise SettingsInvalid(f"{self.key(name)}: must be at least {minimum}, got {value}")
        return value

    def flag(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if not isinstance(value, bool):
            raise SettingsInvalid(f"{self.key(name)}: expected true or false, got {value!r}")
        return value

    def texts(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self._get(name, list(default))
        if isinstance(value, str):  # from the environment: comma-separated
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsInvalid(f"{self.key(name)}: expected a list of strings")
        return tuple(value)

    def secrets(self, name: str) -> dict[str, Secret]:
        """A table of strings held as secrets (HTTP headers often carry credentials)."""
        table = self.table(name)
        return {key: table.secret(key) for key in table.names()}


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again: exponential backoff with jitter, unless the provider said when."""

    max_attempts: int = 8  # then the row is `dead`
    base_seconds: float = 30.0  # the first retry waits 15 to 30 s, the next 30 to 60 s...
    max_seconds: float = 3600.0  # ...and never more than an hour
    max_retry_after_seconds: float = 86_400.0  # a provider's Retry-After is obeyed up to a day


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 500  # rows claimed per transaction
    concurrency: int = 50  # requests in flight at once, across providers
    # How long a claimed row is ours. Longer than the slowest batch can take (including rate-limit
    # waits and timeouts): a row whose lease runs out is treated as interrupted mid-send.
    lease_seconds: float = 600.0
    poll_seconds: float = 1.0  # sleep when nothing is due
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class GuardSettings:
    """Outbound URL safety (actions/guard.py): which normally refused targets are allowed."""

    allow_private: bool = False  # allow every loopback, private and link-local address (tests, demos)
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    allow_hosts: tuple[str, ...] = ()  # host names allowed whatever they resolve to


@dataclass(frozen=True)
class ChannelSettings:
    channel: str
    provider: str = "log"
    rate_per_second: float = 20.0
    burst: int = 20  # tokens the bucket holds: how many may go at once after a quiet spell
    timeout_seconds: float = 10.0
    recipient: str = ""  # the profile trait holding the address (phone, push_token)
    options: Section = field(default_factory=lambda: Section({}))  # the provider's own table


@dataclass(frozen=True)
class Template:
    text: str
    title: str | None = None


@dataclass(frozen=True)
class Settings:
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    channels: Mapping[str, ChannelSettings] = field(
        default_factory=lambda: {c: ChannelSettings(c, recipient=DEFAULT_RECIPIENT[c]) for c in CHANNELS})
    templates: Mapping[str, Template] = field(default_factory=dict)

    def channel(self, name: str) -> ChannelSettings:
        return self.channels.get(name) or ChannelSettings(name)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `path` (if given) overlaid with the environment; defaults for the rest."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise SettingsInvalid(f"{path}: cannot read the settings: {error.strerror}") from error
        except tomllib.TOMLDecodeError as error:
            raise SettingsInvalid(f"{path}: not valid TOML: {error}") from error
    _overlay_environment(data, os.environ if environ is None else environ)
    return parse_settings(Section(data))


def _overlay_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        if not all(path):
            raise SettingsInvalid(f"{name}: empty part in the key path")
        target = data
        for part in path[:-1]:
            inner = target.setdefault(part, {})
            if not isinstance(inner, dict):
                raise SettingsInvalid(f"{name}: {part} is a value in the settings, not a table")
            target = inner
        target[path[-1]] = value


def parse_settings(root: Section) -> Settings:
    dispatch, guard, templates = root.table("dispatch"), root.table("guard"), root.table("templates")
    retry = dispatch.table("retry")
    defaults, default_retry = DispatchSettings(), RetryPolicy()
    return Settings(
        dispatch=DispatchSettings(
            batch_size=dispatch.whole("batch_size", defaults.batch_size, minimum=1),
            concurrency=dispatch.whole("concurrency", defaults.concurrency, minimum=1),
            lease_seconds=dispatch.number("lease_seconds", defaults.lease_seconds, minimum=1.0),
            poll_seconds=dispatch.number("poll_seconds", defaults.poll_seconds),
            retry=RetryPolicy(
                max_attempts=retry.whole("max_attempts", default_retry.max_attempts, minimum=1),
                base_seconds=retry.number("base_seconds", default_retry.base_seconds),
                max_seconds=retry.number("max_seconds", default_retry.max_seconds),
                max_retry_after_seconds=retry.number("max_retry_after_seconds", default_retry.max_retry_after_seconds),
            ),
        ),
        guard=GuardSettings(
            allow_private=guard.flag("allow_private", False),
            allow_networks=tuple(_network(guard, n) for n in guard.texts("allow_networks")),
            allow_hosts=tuple(h.lower() for h in guard.texts("allow_hosts")),
        ),
        channels={name: _channel(root.table(name), name) for name in CHANNELS},
        templates={name: _template(templates.table(name)) for name in templates.names()},
    )


def _template(section: Section) -> Template:
    """A named template, read as the journey checker reads a message: one that does not parse,
    or that a send would refuse (unsafe access, a bound its constants break), is a settings
    error at start-up, not a failed delivery for every person who reaches the step."""
    template = Template(section.text("text"), section.text("title", None))
    for part, text in (("text", template.text), ("title", template.title)):
        if text is None:
            continue
        try:
            found = templates_language.problems(text)
        except RecursionError:
            raise SettingsInvalid(f"{section.key(part)}: the template nests too deeply to be read") from None
        if found:
            first = found[0]
            raise SettingsInvalid(f"{section.key(part)}: {first.message} (line {first.line} of the template)")
    return template


def _network(section: Section, text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SettingsInvalid(f"{section.key('allow_networks')}: {text!r} is not a network (10.0.0.0/8)") from None


def _channel(section: Section, name: str) -> ChannelSettings:
    provider = section.text("provider", "log")
    rate = section.number("rate_per_second", ChannelSettings.rate_per_second)
    if rate <= 0:
        raise SettingsInvalid(f"{section.key('rate_per_second')}: must be more than 0")
    return ChannelSettings(
        channel=name,
        provider=provider,
        rate_per_second=rate,
        burst=section.whole("burst", max(1, int(rate)), minimum=1),
        timeout_seconds=section.number("timeout_seconds", ChannelSettings.timeout_seconds),
        recipient=section.text("recipient", DEFAULT_RECIPIENT[name]),
        options=section.table(provider),
    )
