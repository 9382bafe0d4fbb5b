"""The outbound URL guard: internal targets refused, public ones allowed, exceptions by setting."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

import pytest

from actions.errors import RetryableFailure, UnsafeTarget
from actions.guard import check_url
from actions.settings import GuardSettings

STRICT = GuardSettings()


def check(url: str, settings: GuardSettings = STRICT) -> None:
    asyncio.run(check_url(url, settings))


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1/admin", "127.0.0.1, a loopback address"),
    ("http://127.8.9.10:8080/", "loopback"),
    ("https://10.1.2.3/", "10.1.2.3, a private address"),
    ("http://192.168.1.1/", "private"),
    ("http://172.16.0.5/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a cloud metadata address"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[::1]:8000/", "::1, a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[fd00:ec2::254]/", "metadata"),
    ("http://0.0.0.0/", "address"),
    ("http://100.64.0.1/", "not a public address"),
    ("http://localhost:5432/", "resolves to 127.0.0.1, a loopback address"),
])
def test_internal_targets_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeTarget, match=why.replace(".", r"\.")):
        check(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://1.1.1.1/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(UnsafeTarget, match="only http and https"):
        check(url)


def test_public_addresses_pass() -> None:
    check("https://93.184.216.34/hook")
    check("http://[2606:2800:220:1:248:1893:25c8:1946]/hook")


def test_a_name_is_refused_if_any_of_its_addresses_is_internal() -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34", "10.0.0.7"]

    with pytest.raises(UnsafeTarget, match=r"10\.0\.0\.7"):
        asyncio.run(check_url("https://mixed.example.com/", STRICT, resolve))


def test_a_name_that_does_not_resolve_is_retried_later() -> None:
    with pytest.raises(RetryableFailure, match="cannot resolve"):
        check("https://no-such-host.invalid/")


def test_allow_private_lets_loopback_through_but_never_metadata() -> None:
    relaxed = GuardSettings(allow_private=True)
    check("http://127.0.0.1:8000/", relaxed)
    check("http://localhost/", relaxed)
    with pytest.raises(UnsafeTarget, match="metadata"):
        check("http://169.254.169.254/", relaxed)


def test_allowed_networks_and_hosts_are_exact_exceptions() -> None:
    settings = GuardSettings(allow_networks=(ipaddress.ip_network("10.20.0.0/16"),), allow_hosts=("crm.internal",))
    check("http://10.20.3.4/", settings)
    check("http://crm.internal/api", settings)  # never resolved: allowed by name
    with pytest.raises(UnsafeTarget):
        check("http://10.21.0.1/", settings)
